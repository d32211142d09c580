# Layout 1: a shared-services WordPress farm on one host (seed 000).
#
# One MariaDB, one Redis and one reverse proxy run as containers on a user-defined
# network; every client gets its own database and user on the shared MariaDB (grants on
# that database only, a connection limit), its own Redis ACL user confined to the key
# prefix `wp_<client>:` (it gets NOPERM on every other client's keys), its own volume, a
# memory limit, and an app container whose environment is wired from the tenant by
# reference — including the generated passwords, which terrace fills in during apply and
# never prints. Every plan shows how full the host is and each server's connection
# budget (the clients' limits against max_connections / maxclients, read live), and
# refuses a plan that over-fills or over-commits either.
#
# The images are built locally (no registry): scripts/docker-engine.sh builds
# terrace/busybox:1, scripts/images.sh terrace/mariadb:1, scripts/redis-image.sh
# terrace/redis:1.
#
#   TERRACE_VAR_db_admin_password=... TERRACE_VAR_redis_admin_password=... \
#     terrace -C examples/wordpress-farm plan

variable "db_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the admin account terrace creates in, and uses on, the MariaDB container."
}

variable "redis_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the admin ACL user terrace creates in, and uses on, the Redis container."
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

variable "redis_port" {
  type        = number
  default     = 63791
  description = "Loopback port on which terrace reaches the Redis container."
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

image "redis" {
  name = "terrace/redis:1"
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

# One Redis for every client: 256 MB of cache evicted LRU (CONFIG SET, drift-checked),
# each client confined to its key prefix by an ACL user.
service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1", port = var.redis_port }
  admin    = { user = "terrace_admin", password = var.redis_admin_password }
  settings = { maxmemory = "256mb", "maxmemory-policy" = "allkeys-lru" }

  container {
    name  = "${var.prefix}-redis"
    image = image.redis
    env = {
      REDIS_ADMIN_USER     = "terrace_admin"
      REDIS_ADMIN_PASSWORD = var.redis_admin_password
    }
    ports    = ["127.0.0.1:${var.redis_port}:6379"]
    networks = [{ name = network.farm.name, aliases = ["redis"] }]
    memory   = "320m"
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
    service          = service.db
    name             = "wordpress_${each.key}"
    connection_limit = 10
  }

  redis {
    service          = service.cache
    prefix           = "wp_${each.key}:"
    connection_limit = 20
    purge_keys       = true
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
      REDIS_HOST     = "redis"
      REDIS_USER     = self.redis.user
      REDIS_PASSWORD = self.redis.password
      REDIS_PREFIX   = self.redis.prefix
    }
    mounts   = [{ source = self.volume.data.name, target = "/var/www/html" }]
    networks = [network.farm]
    memory   = each.value
    restart  = "unless-stopped"
    domain   = "${each.key}.farm.test"
  }
}
