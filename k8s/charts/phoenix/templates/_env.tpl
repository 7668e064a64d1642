{{/*
The environment of each deployable. Non-secret settings go to its ConfigMap (rendered from
`phoenix.config.<component>` as YAML of strings); secrets are env entries with secretKeyRef
(`phoenix.secretEnv`). Every name here is a variable of that service's src/config.ts (or of
libs/runtime's fragments it includes).
*/}}

{{/* Shared by every gRPC service: listeners on all interfaces, shutdown timing, logging. */}}
{{- define "phoenix.config.common" -}}
{{- $v := index .root.Values .key }}
LOG_LEVEL: {{ .root.Values.logLevel | quote }}
METRICS_HOST: "0.0.0.0"
METRICS_PORT: {{ .metricsPort | quote }}
SHUTDOWN_GRACE_MS: {{ $v.shutdownGraceMs | int | quote }}
SHUTDOWN_DELAY_MS: {{ $v.shutdownDelayMs | int | quote }}
{{- end }}

{{/* Shared by the services on Postgres and NATS (AS, DS, QS, federation gateway). */}}
{{- define "phoenix.config.storage" -}}
NATS_URL: {{ include "phoenix.natsUrl" .root | quote }}
NATS_STREAM_REPLICAS: {{ .root.Values.nats.streamReplicas | int | quote }}
{{- end }}

{{/* The admin listener of a service with an admin API (`<service>.admin.port`; 0: off). */}}
{{- define "phoenix.config.admin" -}}
{{- if .port }}
{{- /* Loopback only: the admin API is reached with `kubectl exec`, never through a Service. */}}
ADMIN_GRPC_HOST: "127.0.0.1"
ADMIN_GRPC_PORT: {{ .port | int | quote }}
{{- end }}
{{- end }}

{{- define "phoenix.config.auth" -}}
{{- $root := . }}
{{ include "phoenix.config.common" (dict "root" $root "key" "auth" "metricsPort" 9461) }}
{{ include "phoenix.config.storage" (dict "root" $root) }}
GRPC_HOST: "0.0.0.0"
GRPC_PORT: "50051"
AS_DOMAIN: {{ include "phoenix.domain" $root | quote }}
AS_REGISTRATION: {{ .Values.auth.registration | quote }}
AS_TRUSTED_PROXIES: {{ join "," .Values.trustedProxies | quote }}
{{ include "phoenix.config.admin" .Values.auth.admin }}
FEDERATION_PROXY_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "federation-gateway") | quote }}
{{- end }}

{{- define "phoenix.config.delivery" -}}
{{- $root := . }}
{{ include "phoenix.config.common" (dict "root" $root "key" "delivery" "metricsPort" 9466) }}
{{ include "phoenix.config.storage" (dict "root" $root) }}
GRPC_HOST: "0.0.0.0"
GRPC_PORT: "50052"
DS_DOMAIN: {{ include "phoenix.domain" $root | quote }}
DS_TRUSTED_PROXIES: {{ join "," .Values.trustedProxies | quote }}
FEDERATION_PROXY_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "federation-gateway") | quote }}
{{- end }}

{{- define "phoenix.config.queue" -}}
{{- $root := . }}
{{ include "phoenix.config.common" (dict "root" $root "key" "queue" "metricsPort" 9467) }}
{{ include "phoenix.config.storage" (dict "root" $root) }}
GRPC_HOST: "0.0.0.0"
GRPC_PORT: "50053"
QS_DOMAIN: {{ include "phoenix.domain" $root | quote }}
{{ include "phoenix.config.admin" .Values.queue.admin }}
QS_TRUSTED_PROXIES: {{ join "," .Values.trustedProxies | quote }}
FEDERATION_PROXY_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "federation-gateway") | quote }}
{{- /* Push providers: the key files come from Secrets mounted by phoenix.pushVolumes. */}}
{{- $apns := .Values.queue.push.apns }}
{{- if $apns.enabled }}
QS_PUSH_APNS_KEY_FILE: {{ printf "/etc/phoenix/push-apns/%s" $apns.secretKey | quote }}
QS_PUSH_APNS_TEAM_ID: {{ required "queue.push.apns.teamId is required with queue.push.apns.enabled" $apns.teamId | quote }}
QS_PUSH_APNS_TOPIC: {{ required "queue.push.apns.topic (the app's bundle id) is required with queue.push.apns.enabled" $apns.topic | quote }}
QS_PUSH_APNS_ENVIRONMENT: {{ $apns.environment | quote }}
QS_PUSH_APNS_PUSH_TYPE: {{ $apns.pushType | quote }}
{{- end }}
{{- if .Values.queue.push.fcm.enabled }}
QS_PUSH_FCM_SERVICE_ACCOUNT_FILE: {{ printf "/etc/phoenix/push-fcm/%s" .Values.queue.push.fcm.secretKey | quote }}
{{- end }}
{{- end }}

{{/*
The federation gateway. Without federation it still runs (the services send it every request
about another domain) but federates with nobody: plaintext, an empty allowlist, static peers only.
*/}}
{{- define "phoenix.config.federation-gateway" -}}
{{- $root := . }}
{{- $f := .Values.federation }}
{{ include "phoenix.config.common" (dict "root" $root "key" "federation" "metricsPort" 9468) }}
{{ include "phoenix.config.storage" (dict "root" $root) }}
GRPC_HOST: "0.0.0.0"
GRPC_PORT: "8443"
FEDERATION_DOMAIN: {{ include "phoenix.domain" $root | quote }}
FEDERATION_INTERNAL_HOST: "0.0.0.0"
FEDERATION_INTERNAL_PORT: "50055"
{{ include "phoenix.config.admin" $f.admin }}
FEDERATION_AS_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "auth") | quote }}
FEDERATION_DS_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "delivery") | quote }}
FEDERATION_QS_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "queue") | quote }}
{{- if $f.enabled }}
FEDERATION_POLICY: {{ $f.policy | quote }}
FEDERATION_ALLOWED_DOMAINS: {{ join "," $f.allowedDomains | quote }}
FEDERATION_DENIED_DOMAINS: {{ join "," $f.deniedDomains | quote }}
{{- $peers := list }}
{{- range $domain, $address := $f.peers }}
{{- $peers = append $peers (printf "%s=%s" $domain $address) }}
{{- end }}
FEDERATION_PEERS: {{ join "," $peers | quote }}
FEDERATION_STATIC_ONLY: {{ $f.staticOnly | toString | quote }}
{{- if include "phoenix.federationTls" $root }}
FEDERATION_TLS_CERT_FILE: "/etc/phoenix/federation-tls/tls.crt"
FEDERATION_TLS_KEY_FILE: "/etc/phoenix/federation-tls/tls.key"
{{- if $f.tls.ca.enabled }}
FEDERATION_TLS_CA_FILE: {{ printf "/etc/phoenix/federation-ca/%s" $f.tls.ca.key | quote }}
{{- end }}
FEDERATION_MTLS: {{ $f.mtls | toString | quote }}
FEDERATION_INSECURE_PLAINTEXT: "false"
{{- else }}
FEDERATION_INSECURE_PLAINTEXT: "true"
{{- end }}
{{- else }}
FEDERATION_POLICY: "allowlist"
FEDERATION_ALLOWED_DOMAINS: ""
FEDERATION_STATIC_ONLY: "true"
FEDERATION_INSECURE_PLAINTEXT: "true"
{{- end }}
{{- end }}

{{- define "phoenix.config.edge-gateway" -}}
{{- $root := . }}
{{ include "phoenix.config.common" (dict "root" $root "key" "edgeGateway" "metricsPort" 9460) }}
HTTP_HOST: "0.0.0.0"
HTTP_PORT: "8080"
AUTH_SERVICE_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "auth") | quote }}
DELIVERY_SERVICE_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "delivery") | quote }}
QUEUE_SERVICE_ADDRESS: {{ include "phoenix.address" (dict "root" $root "component" "queue") | quote }}
{{- $trust := .Values.edgeGateway.trustProxy }}
{{- if kindIs "invalid" $trust }}{{ $trust = .Values.ingress.enabled }}{{ end }}
EDGE_TRUST_PROXY: {{ $trust | toString | quote }}
{{- with .Values.edgeGateway.corsAllowedOrigins }}
EDGE_CORS_ALLOWED_ORIGINS: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{/*
The ConfigMap data of a component: the chart's wiring, then the operator's `config` map (strings).
*/}}
{{- define "phoenix.configData" -}}
{{- $c := index (include "phoenix.deployables" .root | fromYaml) .component }}
{{- $data := include (printf "phoenix.config.%s" .component) .root | fromYaml }}
{{- range $name, $value := (index .root.Values $c.key).config }}
{{- $_ := set $data $name (toString $value) }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
Env entries from Secrets: the component's DATABASE_URL, NATS credentials, the AS/DS/QS/federation
keys (with the optional `_PREVIOUS` ones of a rotation) and the optional pinned keys / invite codes (secretKeyRef optional where the key may be absent).
*/}}
{{- define "phoenix.secretEnv" -}}
{{- $root := .root }}
{{- $dbKeys := dict "auth" "AUTH_DATABASE_URL" "delivery" "DELIVERY_DATABASE_URL" "queue" "QUEUE_DATABASE_URL" "federation-gateway" "FEDERATION_DATABASE_URL" }}
{{- if hasKey $dbKeys .component }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.databaseSecretName" $root }}
      key: {{ get $dbKeys .component }}
{{- with include "phoenix.natsSecretName" $root }}
{{- if include "phoenix.natsServiceUsers" $root }}
{{- /* The service's own NATS user: it may use only its own subjects (deploy/nats-authorization.conf). */}}
{{- $key := include "phoenix.natsUserKey" $.component }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $key }}_USER
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $key }}_PASSWORD
{{- else if or $root.Values.externalNats.existingSecret (not $root.Values.externalNats.token) }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: NATS_USER
      optional: true
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: NATS_PASSWORD
      optional: true
{{- end }}
{{- if and (not $root.Values.nats.enabled) (or $root.Values.externalNats.existingSecret $root.Values.externalNats.token) }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: NATS_TOKEN
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- if eq .component "auth" }}
- name: AS_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: AS_KEY_ENCRYPTION_KEY
- name: AS_KEY_ENCRYPTION_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: AS_KEY_ENCRYPTION_KEY_PREVIOUS
      optional: true
- name: AS_INVITE_CODES
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: AS_INVITE_CODES
      optional: true
- name: ADMIN_OPERATOR_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: ADMIN_OPERATOR_KEYS
      optional: true
{{- else if eq .component "delivery" }}
- name: DS_REPLAY_MARKER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: DS_REPLAY_MARKER_KEY
- name: DS_REPLAY_MARKER_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: DS_REPLAY_MARKER_KEY_PREVIOUS
      optional: true
{{- else if eq .component "queue" }}
- name: QS_STORAGE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: QS_STORAGE_KEY
- name: ADMIN_OPERATOR_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: QUEUE_ADMIN_OPERATOR_KEYS
      optional: true
{{- if $root.Values.queue.push.apns.enabled }}
{{- /* Public (every APNs provider token names it), but "KEY" in its name keeps it out of ConfigMaps. */}}
- name: QS_PUSH_APNS_KEY_ID
  value: {{ required "queue.push.apns.keyId is required with queue.push.apns.enabled" $root.Values.queue.push.apns.keyId | quote }}
{{- end }}
{{- else if eq .component "federation-gateway" }}
- name: FEDERATION_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: FEDERATION_KEY_ENCRYPTION_KEY
- name: FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS
      optional: true
- name: FEDERATION_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: FEDERATION_SIGNING_KEY
      optional: true
- name: ADMIN_OPERATOR_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "phoenix.keysSecretName" $root }}
      key: FEDERATION_ADMIN_OPERATOR_KEYS
      optional: true
{{- end }}
{{- end }}
