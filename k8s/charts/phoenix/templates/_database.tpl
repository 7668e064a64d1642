{{/*
Database URLs of the four services (secret values: only ever rendered into Secrets).
*/}}

{{- define "phoenix.databases" -}}
auth: AUTH_DATABASE_URL
delivery: DELIVERY_DATABASE_URL
queue: QUEUE_DATABASE_URL
federation: FEDERATION_DATABASE_URL
{{- end }}

{{/* postgres://user:password@host:port/database?parameters of one service on the external Postgres. */}}
{{- define "phoenix.externalDatabaseUrl" -}}
{{- $db := .root.Values.externalDatabase }}
{{- $s := index $db .service }}
{{- if $s.url }}
{{- $s.url }}
{{- else }}
{{- $host := required (printf "externalDatabase.host is required (or externalDatabase.%s.url, externalDatabase.existingSecret, or postgresql.enabled=true for a bundled Postgres)" .service) $db.host }}
{{- $user := $s.user | default $db.user }}
{{- $password := $s.password | default $db.password }}
{{- $host = ternary (printf "[%s]" $host) $host (contains ":" $host) }}
{{- printf "postgres://%s" ($user | urlquery | replace "+" "%20") }}
{{- if $password }}:{{ $password | urlquery | replace "+" "%20" }}{{ end }}
{{- printf "@%s:%v/%s" $host $db.port $s.database }}
{{- with $db.parameters }}?{{ . }}{{ end }}
{{- end }}
{{- end }}

{{/* The URL of one service on the bundled Postgres, with the given password. */}}
{{- define "phoenix.bundledDatabaseUrl" -}}
{{- printf "postgres://%s:%s@%s-postgresql:5432/phoenix_%s" (.root.Values.postgresql.user | urlquery) (.password | urlquery | replace "+" "%20") (include "phoenix.fullname" .root) .service }}
{{- end }}
