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
# The images are built locally (no registry): scripts/docker-engine.sh builds
# terrace/busybox:1 and scripts/images.sh builds terrace/mariadb:1; the mariadb image
# stands in for WordPress, busybox for Promtail. Another host (seed 003's separate
# observability instance, or more clone hosts) is a `host` block and `host = host.NAME`
# on the services and tenants that run there.

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
    mounts   = [{ source = var.log_dir, target = "/logs", read_only = true }]
    networks = [network.clones]
    memory   = "32m"
    restart  = "unless-stopped"
  }
}

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
