{{/*
Names, labels and the table of deployables. Every template takes its names from here: the test
runner and the operator's tooling rely on `<fullname>-<component>`.
*/}}

{{- define "phoenix.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The object name prefix: the release name when it already contains the chart name, else
`<release>-<chart>`; truncated to 63 characters (DNS label).
*/}}
{{- define "phoenix.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "phoenix.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; with (dict "root" $ "component" "auth") also the component. */}}
{{- define "phoenix.labels" -}}
{{- $root := .root | default . }}
helm.sh/chart: {{ include "phoenix.chart" $root }}
app.kubernetes.io/name: {{ include "phoenix.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/version: {{ include "phoenix.imageTag" $root | trunc 63 | trimSuffix "-" | quote }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
app.kubernetes.io/part-of: phoenix
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: name + instance + component. */}}
{{- define "phoenix.selectorLabels" -}}
app.kubernetes.io/name: {{ include "phoenix.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The metadata.annotations map of an object: commonAnnotations plus the given extra map (empty: none). */}}
{{- define "phoenix.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}{{ toYaml . }}{{ end }}
{{- end }}

{{- define "phoenix.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/* The Phoenix image: repository:tag, or repository@digest. */}}
{{- define "phoenix.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- $tag := include "phoenix.imageTag" . }}
{{- if eq $tag "latest" }}
{{- fail "image.tag must not be latest: pin a version so every replica and every upgrade runs the same code" }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "phoenix.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "phoenix.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The homeserver's domain: required, and a lower-case DNS name (values.schema.json checks the
pattern as well; this message is what `helm install` without --set domain shows).
*/}}
{{- define "phoenix.domain" -}}
{{- $d := required "domain is required: the homeserver's DNS name, e.g. --set domain=chat.example.org (user ids end in @domain; choose it before the first user registers)" .Values.domain }}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$" $d) }}
{{- fail (printf "domain %q is not a lower-case DNS name (letters a-z, digits, dashes, dots), e.g. chat.example.org" $d) }}
{{- end }}
{{- if gt (len $d) 253 }}
{{- fail "domain is longer than 253 characters" }}
{{- end }}
{{- $d }}
{{- end }}

{{/*
The deployables: which values key configures each and its container ports (name → port); every
one is probed on its `metrics` port (phoenix.probes). The image's first argument is the component name.
*/}}
{{- define "phoenix.deployables" -}}
auth:
  key: auth
  ports: {grpc: 50051, metrics: 9461}
delivery:
  key: delivery
  ports: {grpc: 50052, metrics: 9466}
queue:
  key: queue
  ports: {grpc: 50053, metrics: 9467}
federation-gateway:
  key: federation
  ports: {grpc-federation: 8443, grpc-internal: 50055, metrics: 9468}
edge-gateway:
  key: edgeGateway
  ports: {http: 8080, metrics: 9460}
{{- end }}

{{/* Service addresses inside the namespace (short Service names). */}}
{{- define "phoenix.address" -}}
{{- $ports := dict "auth" 50051 "delivery" 50052 "queue" 50053 "federation-gateway" 50055 "edge-gateway" 8080 }}
{{- printf "%s-%s:%v" (include "phoenix.fullname" .root) .component (get $ports .component) }}
{{- end }}

{{/* Secret names. */}}
{{- define "phoenix.keysSecretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-keys" (include "phoenix.fullname" .)) }}
{{- end }}

{{- define "phoenix.databaseSecretName" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret }}
{{- .Values.externalDatabase.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "phoenix.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The Secret the migration Job reads. A pre-install hook runs before the release's own objects
exist, so with an external database it reads a hook copy (`<fullname>-migrate`, created just
before it as a lower-weight hook of the same events) or the operator's existingSecret; with the
bundled Postgres the Job is a post-install hook and reads the release's database Secret.
*/}}
{{- define "phoenix.migrateSecretName" -}}
{{- if .Values.postgresql.enabled }}
{{- printf "%s-database" (include "phoenix.fullname" .) }}
{{- else if .Values.externalDatabase.existingSecret }}
{{- .Values.externalDatabase.existingSecret }}
{{- else }}
{{- printf "%s-migrate" (include "phoenix.fullname" .) }}
{{- end }}
{{- end }}

{{- define "phoenix.migrateHooks" -}}
{{- if .Values.postgresql.enabled }}post-install,pre-upgrade{{ else }}pre-install,pre-upgrade{{ end }}
{{- end }}

{{/*
One NATS user per service (bundled NATS always; external NATS with externalNats.serviceUsers):
the Secret holds NATS_<SERVICE>_USER / NATS_<SERVICE>_PASSWORD, SERVICE one of the keys below.
*/}}
{{- define "phoenix.natsServiceUsers" -}}
{{- if or .Values.nats.enabled .Values.externalNats.serviceUsers }}true{{ end }}
{{- end }}

{{/* The Secret key prefix of a component's NATS user (services that connect to NATS only). */}}
{{- define "phoenix.natsUserKey" -}}
{{- get (dict "auth" "NATS_AUTH" "delivery" "NATS_DELIVERY" "queue" "NATS_QUEUE" "federation-gateway" "NATS_FEDERATION_GATEWAY") . }}
{{- end }}

{{/* NATS credentials come from a Secret when there are any. */}}
{{- define "phoenix.natsSecretName" -}}
{{- if .Values.nats.enabled }}
{{- printf "%s-nats" (include "phoenix.fullname" .) }}
{{- else if .Values.externalNats.existingSecret }}
{{- .Values.externalNats.existingSecret }}
{{- else if or .Values.externalNats.user .Values.externalNats.password .Values.externalNats.token }}
{{- printf "%s-nats" (include "phoenix.fullname" .) }}
{{- end }}
{{- end }}

{{- define "phoenix.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s-nats:4222" (include "phoenix.fullname" .) }}
{{- else }}
{{- required "externalNats.url is required (nats://host:4222), or set nats.enabled=true for a bundled single NATS server" .Values.externalNats.url }}
{{- end }}
{{- end }}

{{- define "phoenix.federationTlsSecretName" -}}
{{- if .Values.federation.tls.existingSecret }}
{{- .Values.federation.tls.existingSecret }}
{{- else if .Values.federation.tls.certManager.enabled }}
{{- printf "%s-federation-tls" (include "phoenix.fullname" .) }}
{{- end }}
{{- end }}

{{/* Whether the gateway gets TLS files (federation on and not plaintext). */}}
{{- define "phoenix.federationTls" -}}
{{- if and .Values.federation.enabled (not .Values.federation.insecurePlaintext) }}
{{- if not (include "phoenix.federationTlsSecretName" .) }}
{{- fail "federation.enabled needs a TLS certificate for the domain: set federation.tls.existingSecret (a kubernetes.io/tls Secret) or federation.tls.certManager.enabled=true with an issuerRef (federation.insecurePlaintext=true only for test stands)" }}
{{- end }}
{{- true }}
{{- end }}
{{- end }}

{{/* Validates settings that span several values; included by the keys Secret (always rendered). */}}
{{- define "phoenix.validate" -}}
{{- $_ := include "phoenix.domain" . }}
{{- $_ := include "phoenix.image" . }}
{{- $_ := include "phoenix.federationTls" . }}
{{- if and (not .Values.nats.enabled) .Values.externalNats.serviceUsers (not .Values.externalNats.existingSecret) }}
{{- fail "externalNats.serviceUsers needs externalNats.existingSecret with NATS_<SERVICE>_USER and NATS_<SERVICE>_PASSWORD for AUTH, DELIVERY, QUEUE and FEDERATION_GATEWAY" }}
{{- end }}
{{- if and .Values.nats.enabled (ne (int .Values.nats.streamReplicas) 1) }}
{{- fail "nats.streamReplicas must be 1 with the bundled NATS (a single server cannot keep 3 copies)" }}
{{- end }}
{{- if and .Values.federation.mtls (not .Values.federation.tls.ca.enabled) }}
{{- fail "federation.mtls needs federation.tls.ca.enabled: peers' client certificates are checked against that CA" }}
{{- end }}
{{- if and .Values.federation.tls.certManager.enabled (not .Values.federation.tls.certManager.issuerRef.name) }}
{{- fail "federation.tls.certManager.enabled needs federation.tls.certManager.issuerRef.name" }}
{{- end }}
{{- if and .Values.federation.tls.existingSecret .Values.federation.tls.certManager.enabled }}
{{- fail "set either federation.tls.existingSecret or federation.tls.certManager.enabled, not both" }}
{{- end }}
{{- if and .Values.secrets.existingSecret (or .Values.auth.inviteCodes .Values.auth.admin.operatorKeys .Values.federation.admin.operatorKeys .Values.queue.admin.operatorKeys .Values.federation.signingKey .Values.secrets.asKeyEncryptionKey .Values.secrets.qsStorageKey .Values.secrets.federationKeyEncryptionKey .Values.secrets.dsReplayMarkerKey) }}
{{- fail (printf "secrets.existingSecret is set: put AS_INVITE_CODES, ADMIN_OPERATOR_KEYS, FEDERATION_ADMIN_OPERATOR_KEYS, QUEUE_ADMIN_OPERATOR_KEYS, FEDERATION_SIGNING_KEY and the keys into Secret %s instead of auth.inviteCodes, auth.admin.operatorKeys, federation.admin.operatorKeys, queue.admin.operatorKeys, federation.signingKey, secrets.asKeyEncryptionKey, secrets.qsStorageKey, secrets.federationKeyEncryptionKey, secrets.dsReplayMarkerKey" .Values.secrets.existingSecret) }}
{{- end }}
{{- $components := include "phoenix.deployables" . | fromYaml }}
{{- range $component, $c := $components }}
{{- $v := index $.Values $c.key }}
{{- $needed := add (int $v.shutdownGraceMs) (int $v.shutdownDelayMs) }}
{{- if le (mul (int $v.terminationGracePeriodSeconds) 1000) $needed }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v s) must exceed shutdownGraceMs + shutdownDelayMs (%v ms), or Kubernetes kills the pod before it drained" $c.key $v.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- range $name, $value := $v.config }}
{{- if and (regexMatch "(?i)KEY|PASSWORD|TOKEN|SECRET|DATABASE_URL|CREDENTIAL|INVITE_CODES" $name) (not (regexMatch "(?i)_(FILE|PATH|DIR)$" $name)) }}
{{- fail (printf "%s.config.%s looks like a secret and would land in a ConfigMap: put it in a Secret and reference it from %s.extraEnv (valueFrom.secretKeyRef)" $c.key $name $c.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
