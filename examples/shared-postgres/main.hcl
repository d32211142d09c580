# Layout 2: one PostgreSQL server, one database per app.
#
# Each app gets a database, an owner role with a generated password (kept in the state
# file, shown as "(sensitive value)" everywhere else), a CONNECTION LIMIT, and
# REVOKE CONNECT ... FROM PUBLIC so that no other app's role can connect to it.
#
#   TERRACE_VAR_pg_admin_password=... terrace -C examples/shared-postgres plan

variable "pg_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of the PostgreSQL admin role terrace logs in as."
}

variable "apps" {
  description = "App name => connection limit."
  default     = { calibre_web = 50, app2 = 30 }
}

service "pg" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1", port = 5432 }
  admin    = { user = "terrace_admin", password = var.pg_admin_password }
}

tenant "app" {
  for_each = var.apps

  database {
    service          = service.pg
    name             = each.key
    connection_limit = each.value
  }
}
