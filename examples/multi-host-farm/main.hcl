# Layout 5: one WordPress-like farm grown past one host (seeds 001 "scaling to 500+
# sites" and 004's phases).
#
# Several Docker hosts reached over SSH, each with its own shared MariaDB container
# (`service "db" { for_each = host.web }`), and tenants placed on them by memory: each
# host declares the memory tenants may reserve there, and the `placement` rule fills
# the hosts in order. Placement is stable: the state records where each tenant went,
# so adding a host or a tenant moves no one; a tenant moves only when its `host` says
# so. Every plan shows each host's memory (declared and live) and each MariaDB's
# connection budget, and refuses a layout that does not fit, naming the host.
#
# Stand-in images, built locally (no registry): terrace/busybox:1 plays WordPress,
# terrace/mariadb:1 the database (scripts/docker-engine.sh, scripts/images.sh;
# scripts/second-host.sh copies them to the second host).
#
#   TERRACE_VAR_db_admin_password=... terrace -C examples/multi-host-farm plan

variable "hosts" {
  type = map(object({
    address = string
    port    = number
    socket  = string
    memory  = string
  }))
  description = "Host => SSH address and port, its Docker engine's socket there, and the memory the farm may reserve on it."
  default = {
    a = { address = "10.0.0.11", port = 22, socket = "/var/run/docker.sock", memory = "4g" }
    b = { address = "10.0.0.12", port = 22, socket = "/var/run/docker.sock", memory = "4g" }
  }
}

variable "ssh_user" {
  default = "deploy"
}

variable "ssh_key" {
  default = "~/.ssh/id_ed25519"
}

variable "known_hosts" {
  default = "~/.ssh/known_hosts"
}

variable "prefix" {
  type        = string
  default     = "mfarm"
  description = "Prefix of every container and network name, so farms can sit side by side."
}

variable "db_port" {
  type        = number
  default     = 33071
  description = "Port each host's MariaDB publishes on that host's loopback; terrace reaches it through the host's SSH connection."
}

variable "db_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the admin account terrace creates in, and uses on, every MariaDB container."
}

variable "sites" {
  type        = map(string)
  description = "Site => memory limit of its app container: what it takes from its host."
  default = {
    alpha = "256m"
    bravo = "256m"
    charlie = "512m"
  }
}

variable "strategy" {
  type        = string
  default     = "fill"
  description = "How new sites are placed: \"fill\" fills each host in turn, \"spread\" picks the host with the most memory free."
}

variable "pinned" {
  type        = map(string)
  description = "Site => host key, for sites placed by hand (or moved: the plan re-creates their resources there)."
  default     = {}
}

host "web" {
  for_each      = var.hosts
  address       = each.value.address
  port          = each.value.port
  user          = var.ssh_user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  memory        = each.value.memory
  docker        = { socket = each.value.socket }
}

network "farm" {
  for_each = host.web
  host     = each.value
  name     = "${var.prefix}_net"
}

# One MariaDB per host, shared by the sites placed there.
service "db" {
  for_each = host.web
  host     = each.value
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = var.db_port }
  admin    = { user = "terrace_admin", password = var.db_admin_password }

  container {
    name  = "${var.prefix}-db-${each.key}"
    image = "terrace/mariadb:1"
    # skip-name-resolve: no reverse DNS lookup of every client (grants are by '%'); a
    # host whose resolver is slow or unreachable would otherwise stall each login.
    command = [
      "sh", "-c",
      "printf '[mysqld]\\nskip-name-resolve\\n' > /etc/mysql/mariadb.conf.d/99-farm.cnf && exec /usr/local/bin/terrace-mariadb-entrypoint",
    ]
    env = {
      MARIADB_ADMIN_USER     = "terrace_admin"
      MARIADB_ADMIN_PASSWORD = var.db_admin_password
    }
    ports    = ["127.0.0.1:${var.db_port}:3306"]
    networks = [{ name = network.farm[each.key].name, aliases = ["db"] }]
    memory   = "512m"
    restart  = "unless-stopped"
  }
}

tenant "site" {
  for_each = var.sites

  # A pinned site goes where `pinned` says; the others are placed by the rule and stay.
  host = lookup(host.web, lookup(var.pinned, each.key, ""), null)

  placement {
    hosts    = host.web
    strategy = var.strategy
  }

  # On the MariaDB of the host the site is placed on.
  database {
    service          = service.db[self.host.key]
    name             = "wp_${each.key}"
    connection_limit = 10
  }

  app {
    name   = "${var.prefix}-wp-${each.key}"
    image  = "terrace/busybox:1"
    command = ["sleep", "infinity"]
    memory = each.value
    env = {
      WORDPRESS_DB_HOST     = "db:3306"
      WORDPRESS_DB_NAME     = self.database.name
      WORDPRESS_DB_USER     = self.database.user
      WORDPRESS_DB_PASSWORD = self.database.password
    }
    networks = [{ name = network.farm[self.host.key].name }]
    restart  = "unless-stopped"
  }
}
