# Layout 3 (seed 003): short-lived clone sites that expire.
#
# On the Docker host: one shared MariaDB container (every clone gets its own database
# wp_<clone> and user on it, limited to that database), one app container per clone
# wired to its database, and a log shipper that reads the engine's container logs
# read-only. Clones are created on demand without editing this file, one file each in
# clones.d/, and expire by their ttl:
#
#   terrace -C examples/ephemeral-clones instance add clones feature_123 --ttl 48h
#   TERRACE_VAR_db_admin_password=... terrace -C examples/ephemeral-clones apply
#
# Cleanup is a scheduled apply (cron, CI): once a clone's ttl has passed since terrace
# created it, the apply dumps its database (.terrace/backups/), drops it, removes its
# container, and says which clones expired; it never creates them again while clones.d
# still lists them (`terrace instance rm clones feature_123` forgets one).
#
#   */15 * * * *  terrace -C /srv/clones apply --auto-approve   # exit 0 ok, 1 failure
#
# `--now 2030-01-01T00:00:00Z` (or TERRACE_NOW) previews a later plan.
#
# The logs go to a separate observability host (seed 003's second instance, reached
# over SSH, its own Docker engine): Loki, which the log shippers push to, and Grafana,
# published on that host's loopback only (reach it through an SSH tunnel). Logs survive
# the clone hosts, and the observability containers never compete with the clones.
#
# The images are built locally (no registry): scripts/docker-engine.sh builds
# terrace/busybox:1 and scripts/images.sh builds terrace/mariadb:1; the mariadb image
# stands in for WordPress, busybox for Promtail, Loki and Grafana. In the tests the
# observability host is scripts/second-host.sh's h2.

variable "db_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the admin account terrace creates in, and uses on, the MariaDB container."
}

variable "prefix" {
  type        = string
  default     = "clones"
  description = "Prefix of every container, network and volume name."
}

variable "db_port" {
  type        = number
  default     = 33062
  description = "Loopback port on which terrace reaches the MariaDB container."
}

variable "clones" {
  type        = map(object({ ttl = string }))
  directory   = "clones.d"
  description = "The clone sites: clones.d/<id>.json = {\"ttl\": \"48h\"}, written by `terrace instance add`."
}

variable "log_dir" {
  type        = string
  default     = "/var/lib/docker/containers"
  description = "The engine's container log directory, which the log shipper reads."
}

variable "observability" {
  type        = object({ address = string, port = number, user = string, docker_socket = string })
  description = "The observability host: SSH address, port and login, and its Docker engine's socket there."
  default     = { address = "10.0.0.50", port = 22, user = "deploy", docker_socket = "/var/run/docker.sock" }
}

variable "ssh_key" {
  default     = "~/.ssh/id_ed25519"
  description = "Private key for the observability host."
}

variable "known_hosts" {
  default     = "~/.ssh/known_hosts"
  description = "known_hosts file holding the observability host's key."
}

variable "loki_port" {
  type        = number
  default     = 3100
  description = "Port on the observability host where Loki takes pushed logs."
}

host "observability" {
  address       = var.observability.address
  port          = var.observability.port
  user          = var.observability.user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  docker        = { socket = var.observability.docker_socket }
}

image "busybox" {
  name = "terrace/busybox:1"
  pull = "never"
}

image "mariadb" {
  name = "terrace/mariadb:1"
  pull = "never"
}

network "clones" {
  name = "${var.prefix}_net"
}

volume "db_data" {
  name = "${var.prefix}_db_data"
}

# The shared MariaDB of this host: one per host, every clone's database on it.
service "db" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = var.db_port }
  admin    = { user = "terrace_admin", password = var.db_admin_password }

  container {
    name  = "${var.prefix}-db"
    image = image.mariadb
    env = {
      MARIADB_ADMIN_USER     = "terrace_admin"
      MARIADB_ADMIN_PASSWORD = var.db_admin_password
    }
    ports    = ["127.0.0.1:${var.db_port}:3306"]
    networks = [{ name = network.clones.name, aliases = ["db"] }]
    mounts   = [{ source = volume.db_data.name, target = "/var/lib/mysql" }]
    memory   = "512m"
    restart  = "unless-stopped"
  }
}

# The log shipper of this host: reads every container's log, never writes there.
service "log_shipper" {
  engine = "container"

  container {
    name     = "${var.prefix}-log-shipper"
    image    = image.busybox
    command  = ["sh", "-c", "while true; do ls /logs > /dev/null; sleep 60; done"]
    env      = { LOKI_URL = "http://${var.observability.address}:${var.loki_port}/loki/api/v1/push" }
    mounts   = [{ source = var.log_dir, target = "/logs", read_only = true }]
    networks = [network.clones]
    memory   = "32m"
    restart  = "unless-stopped"
  }
}

# --- the observability host -----------------------------------------------------------

image "obs_busybox" {
  host = host.observability
  name = "terrace/busybox:1"
  pull = "never"
}

network "observability" {
  host = host.observability
  name = "${var.prefix}_obs"
}

volume "loki_data" {
  host = host.observability
  name = "${var.prefix}_loki_data"
}

# Loki: takes the shippers' pushes on the host's address.
service "loki" {
  engine = "container"
  host   = host.observability

  container {
    name     = "${var.prefix}-loki"
    image    = image.obs_busybox
    command  = ["httpd", "-f", "-p", "3100", "-h", "/loki"]
    ports    = ["${var.loki_port}:3100"]
    networks = [{ name = network.observability.name, aliases = ["loki"] }]
    mounts   = [{ source = volume.loki_data.name, target = "/loki" }]
    memory   = "128m"
    restart  = "unless-stopped"
  }
}

# Grafana: reads Loki over the host's own network; published on loopback only.
service "grafana" {
  engine = "container"
  host   = host.observability

  container {
    name     = "${var.prefix}-grafana"
    image    = image.obs_busybox
    command  = ["httpd", "-f", "-p", "3000", "-h", "/"]
    env      = { LOKI_URL = "http://loki:3100" }
    ports    = ["127.0.0.1:3000:3000"]
    networks = [network.observability]
    memory   = "64m"
    restart  = "unless-stopped"
  }
}

# --- the clones ----------------------------------------------------------------------

tenant "clone" {
  for_each = var.clones

  database {
    service          = service.db
    name             = "wp_${each.key}"
    user             = "u_${each.key}"
    charset          = "utf8mb4"
    collation        = "utf8mb4_unicode_ci"
    connection_limit = 10
  }

  app {
    name    = "${var.prefix}-${replace(each.key, "_", "-")}"
    image   = image.mariadb
    command = ["sleep", "infinity"]
    env = {
      DB_HOST     = "db"
      DB_NAME     = self.database.name
      DB_USER     = self.database.user
      DB_PASSWORD = self.database.password
    }
    networks = [network.clones]
    memory   = "96m"
  }

  # Counted from when terrace first created the clone (recorded in the state).
  lifecycle {
    ttl = each.value.ttl
  }
}
