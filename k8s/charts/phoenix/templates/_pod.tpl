{{/*
Pod pieces shared by every Phoenix pod (deployables, migration Job, test Pod).
*/}}

{{- define "phoenix.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "phoenix.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{- define "phoenix.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The default topology spread of a component: soft, over zones and nodes. */}}
{{- define "phoenix.topologySpread" -}}
{{- $v := index .root.Values .key }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $v.topologySpreadConstraints | nindent 2 }}
{{- else if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $.root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "phoenix.selectorLabels" (dict "root" $.root "component" $.component) | trim | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Probes of a deployable, all on its metrics port (served by the runtime from the process's start,
before it opens its database): /healthz is 200 while the process runs, so startup and liveness
never restart a pod that waits for Postgres or NATS; /readyz is 503 while a dependency (database,
NATS; the edge gateway: an upstream) is unreachable or shutdown began, taking the pod out of its
Service until it recovers by itself.
*/}}
{{- define "phoenix.probes" -}}
{{- $p := .root.Values.probes }}
startupProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end }}

{{/* Volumes and mounts of the federation gateway's TLS files. */}}
{{- define "phoenix.federationVolumes" -}}
{{- $ca := .Values.federation.tls.ca }}
- name: federation-tls
  secret:
    secretName: {{ include "phoenix.federationTlsSecretName" . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- if $ca.enabled }}
- name: federation-ca
  {{- if $ca.configMap }}
  configMap:
    name: {{ $ca.configMap }}
  {{- else }}
  secret:
    secretName: {{ $ca.secret | default (include "phoenix.federationTlsSecretName" .) }}
  {{- end }}
    items:
      - key: {{ $ca.key }}
        path: {{ $ca.key }}
{{- end }}
{{- end }}

{{- define "phoenix.federationMounts" -}}
- name: federation-tls
  mountPath: /etc/phoenix/federation-tls
  readOnly: true
{{- if .Values.federation.tls.ca.enabled }}
- name: federation-ca
  mountPath: /etc/phoenix/federation-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Volumes and mounts of the QS's push provider keys (each from the operator's Secret). */}}
{{- define "phoenix.pushVolumes" -}}
{{- $push := .Values.queue.push }}
{{- if $push.apns.enabled }}
- name: push-apns
  secret:
    secretName: {{ required "queue.push.apns.existingSecret is required with queue.push.apns.enabled (a Secret holding the .p8 key)" $push.apns.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $push.apns.secretKey }}
        path: {{ $push.apns.secretKey }}
{{- end }}
{{- if $push.fcm.enabled }}
- name: push-fcm
  secret:
    secretName: {{ required "queue.push.fcm.existingSecret is required with queue.push.fcm.enabled (a Secret holding the service-account JSON)" $push.fcm.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $push.fcm.secretKey }}
        path: {{ $push.fcm.secretKey }}
{{- end }}
{{- end }}

{{- define "phoenix.pushMounts" -}}
{{- if .Values.queue.push.apns.enabled }}
- name: push-apns
  mountPath: /etc/phoenix/push-apns
  readOnly: true
{{- end }}
{{- if .Values.queue.push.fcm.enabled }}
- name: push-fcm
  mountPath: /etc/phoenix/push-fcm
  readOnly: true
{{- end }}
{{- end }}
