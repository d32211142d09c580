# Layout 1: a shared-services WordPress farm on one host.
#
# One MariaDB and one reverse proxy run as containers on a user-defined network; every
# client gets its own database and user on the shared MariaDB (grants on that database
# only), its own volume, a memory limit, and an app container whose environment is wired
# from the tenant by reference — including the generated password, which terrace fills
# in during apply and never prints.
#
# The images are built locally (no registry): scripts/docker-engine.sh builds
# terrace/busybox:1 and scripts/images.sh builds terrace/mariadb:1.
#
#   TERRACE_VAR_db_admin_password=... terrace -C examples/wordpress-farm plan

variable "db_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the admin account terrace creates in, and uses on, the MariaDB container."
}

variable "prefix" {
  type        = string
  default     = "farm"
  description = "Prefix of every container, network and volume name, so farms can sit side by side."
}

variable "db_port" {
  type        = number
  default     = 33061
  description = "Loopback port on which terrace reaches the MariaDB container."
}

variable "proxy_port" {
  type    = number
  default = 8088
}

variable "clients" {
  description = "Client name => memory limit of its app container."
  default = {
    alice = "128m"
    bob   = "96m"
    carol = "96m"
  }
}

image "busybox" {
  name = "terrace/busybox:1"
  pull = "never"
}

image "mariadb" {
  name = "terrace/mariadb:1"
  pull = "never"
}

network "farm" {
  name = "${var.prefix}_net"
}

volume "db_data" {
  name = "${var.prefix}_db_data"
}

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
    networks = [{ name = network.farm.name, aliases = ["db"] }]
    mounts   = [{ source = volume.db_data.name, target = "/var/lib/mysql" }]
    memory   = "512m"
    restart  = "unless-stopped"
  }
}

service "proxy" {
  engine = "container"

  container {
    name     = "${var.prefix}-proxy"
    image    = image.busybox
    command  = ["httpd", "-f", "-p", "80", "-h", "/"]
    ports    = ["127.0.0.1:${var.proxy_port}:80"]
    networks = [network.farm]
    memory   = "32m"
  }
}

tenant "client" {
  for_each = var.clients

  database {
    service = service.db
    name    = "wordpress_${each.key}"
  }

  volume "data" {
    name = "${var.prefix}_${each.key}_data"
  }

  app {
    name    = "${var.prefix}-${each.key}"
    # The MariaDB image doubles as the app image here because it carries a real
    # `mariadb` client, which the end-to-end test uses to log in from inside the app.
    image   = image.mariadb
    command = ["sleep", "infinity"]
    env = {
      DB_HOST     = "db"
      DB_NAME     = self.database.name
      DB_USER     = self.database.user
      DB_PASSWORD = self.database.password
    }
    mounts   = [{ source = self.volume.data.name, target = "/var/www/html" }]
    networks = [network.farm]
    memory   = each.value
    restart  = "unless-stopped"
    domain   = "${each.key}.farm.test"
  }
}
