# Layout 4: separate HTTP, Redis, MySQL and worker servers reached over SSH.
#
# Each server gets its packages, its config files (nginx site, redis.conf, mysqld.cnf,
# supervisor program), its services (restarted when their files change) and firewall
# rules that let only the app servers (HTTP and worker) reach Redis and MySQL. The
# apps' databases live on the MySQL server, which listens on its own loopback only:
# terrace reaches it through an SSH tunnel.
#
#   TERRACE_VAR_mysql_admin_password=... TERRACE_VAR_redis_password=... \
#     terrace -C examples/multi-server plan

variable "servers" {
  type        = map(object({ address = string, port = number }))
  description = "Role => SSH address and port of the server playing it."
  default = {
    http   = { address = "10.0.0.10", port = 22 }
    redis  = { address = "10.0.0.20", port = 22 }
    mysql  = { address = "10.0.0.30", port = 22 }
    worker = { address = "10.0.0.40", port = 22 }
  }
}

variable "app_servers" {
  description = "Addresses from which Redis and MySQL accept connections: the HTTP and worker servers' private addresses."
  type        = list(string)
  default     = ["10.0.0.10", "10.0.0.40"]
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

variable "etc_dir" {
  description = "Where configuration files go (a scratch directory in tests)."
  default     = "/etc"
}

variable "packages" {
  type        = map(list(string))
  description = "Role => packages to install."
  default = {
    http   = ["nginx", "php8.2-fpm"]
    redis  = ["redis-server"]
    mysql  = ["mariadb-server"]
    worker = ["php8.2-cli", "supervisor"]
  }
}

variable "daemons" {
  type        = map(list(string))
  description = "Role => services to keep running (restarted when their config changes)."
  default = {
    http   = ["nginx"]
    redis  = ["redis-server"]
    mysql  = ["mariadb"]
    worker = ["supervisor"]
  }
}

variable "apps" {
  type        = map(string)
  description = "App => domain; each gets a database and a vhost."
  default = {
    flow  = "flow.marg.test"
    links = "links.marg.test"
  }
}

variable "mysql_admin_password" {
  type      = string
  sensitive = true
}

variable "redis_password" {
  type      = string
  sensitive = true
}

locals {
  # (role, package) pairs, flattened for for_each.
  packages = merge([for role, names in var.packages : { for n in names : "${role}/${n}" => { role = role, name = n } }]...)
  daemons  = merge([for role, names in var.daemons : { for n in names : "${role}/${n}" => { role = role, name = n } }]...)
  # Which config file each daemon reads.
  config_of = {
    nginx          = "nginx_site"
    "redis-server" = "redis_conf"
    mariadb        = "mysqld_cnf"
    supervisor     = "worker_program"
  }
}

host "http" {
  address       = var.servers.http.address
  port          = var.servers.http.port
  user          = var.ssh_user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  become        = true
}

host "redis" {
  address       = var.servers.redis.address
  port          = var.servers.redis.port
  user          = var.ssh_user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  become        = true
}

host "mysql" {
  address       = var.servers.mysql.address
  port          = var.servers.mysql.port
  user          = var.ssh_user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  become        = true
}

host "worker" {
  address       = var.servers.worker.address
  port          = var.servers.worker.port
  user          = var.ssh_user
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
  become        = true
}

package "all" {
  for_each = local.packages
  host     = lookup({ http = host.http, redis = host.redis, mysql = host.mysql, worker = host.worker }, each.value.role)
  name     = each.value.name
}

command "dirs" {
  for_each = toset(["http", "redis", "mysql", "worker"])
  host     = lookup({ http = host.http, redis = host.redis, mysql = host.mysql, worker = host.worker }, each.key)
  command  = "mkdir -p ${var.etc_dir}/nginx/sites-available ${var.etc_dir}/redis ${var.etc_dir}/mysql/mariadb.conf.d ${var.etc_dir}/supervisor/conf.d"
  creates  = "${var.etc_dir}/supervisor/conf.d"
}

file "nginx_site" {
  host       = host.http
  path       = "${var.etc_dir}/nginx/sites-available/marg-ecosystem"
  source     = "templates/nginx-site.conf"
  mode       = "0644"
  depends_on = [command.dirs["http"]]
}

file "redis_conf" {
  host       = host.redis
  path       = "${var.etc_dir}/redis/redis.conf"
  source     = "templates/redis.conf"
  mode       = "0640"
  depends_on = [command.dirs["redis"]]
}

file "mysqld_cnf" {
  host       = host.mysql
  path       = "${var.etc_dir}/mysql/mariadb.conf.d/60-marg.cnf"
  source     = "templates/mysqld.cnf"
  mode       = "0644"
  depends_on = [command.dirs["mysql"]]
}

file "worker_program" {
  host       = host.worker
  path       = "${var.etc_dir}/supervisor/conf.d/laravel-worker.conf"
  source     = "templates/laravel-worker.conf"
  mode       = "0644"
  depends_on = [command.dirs["worker"]]
}

daemon "all" {
  for_each   = local.daemons
  host       = lookup({ http = host.http, redis = host.redis, mysql = host.mysql, worker = host.worker }, each.value.role)
  name       = each.value.name
  running    = true
  enabled    = true
  restart_on = [lookup({ nginx_site = file.nginx_site, redis_conf = file.redis_conf, mysqld_cnf = file.mysqld_cnf, worker_program = file.worker_program }, local.config_of[each.value.name])]
  depends_on = [package.all]
}

firewall_rule "redis" {
  host       = host.redis
  port       = 6379
  allow_from = var.app_servers
  comment    = "app servers only"
}

firewall_rule "mysql" {
  host       = host.mysql
  port       = 3306
  allow_from = var.app_servers
  comment    = "app servers only"
}

# terrace administers the apps' databases through an SSH tunnel to the MySQL server's
# loopback interface: no database port is exposed to terrace's machine. The admin account
# must exist on the server (create it once, e.g. with `mariadb` as root); until the server
# is installed and running, its databases are reported as unreachable and the rest applies.
service "mysql" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = 3306 }
  admin    = { user = "terrace_admin", password = var.mysql_admin_password }
  host     = host.mysql
}

tenant "app" {
  for_each = var.apps

  database {
    service          = service.mysql
    name             = each.key
    connection_limit = 50
  }
}
