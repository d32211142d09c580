# Layout 3 (database half): short-lived clone sites sharing one MySQL/MariaDB server.
# Each clone gets a database wp_<clone-id>, its own user limited to that database, and
# a cap on concurrent connections. Remove a clone from `clones` and the next apply
# drops its database and user.
#
#   TERRACE_VAR_mysql_admin_password=... terrace -C examples/ephemeral-clones plan

variable "mysql_admin_password" {
  type      = string
  sensitive = true
}

variable "clones" {
  type        = set(string)
  description = "IDs of the clone sites that should exist."
  default     = ["c101", "c102", "c103"]
}

locals {
  prefix = "wp_"
}

service "mysql" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = 3306 }
  admin    = { user = "terrace_admin", password = var.mysql_admin_password }
}

tenant "clone" {
  for_each = var.clones

  database {
    service          = service.mysql
    name             = "${local.prefix}${each.key}"
    user             = "u_${each.key}"
    charset          = "utf8mb4"
    collation        = "utf8mb4_unicode_ci"
    connection_limit = 10
  }
}
