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

{{/* Probes of a deployable: native gRPC health, or the edge gateway's /readyz and /healthz. */}}
{{- define "phoenix.probes" -}}
{{- $p := .root.Values.probes }}
{{- if eq .c.probe "grpc" }}
startupProbe:
  grpc:
    port: {{ .c.probePort }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ .c.probePort }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .c.probePort }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- else }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
# Ready when every upstream (AS, DS, QS) answers SERVING.
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end }}
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
