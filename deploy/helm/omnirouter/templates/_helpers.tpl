{{/*
Shared helpers. Per-service templates are called with a context dict:
  (dict "root" $ "key" "gateway" "svc" $.Values.gateway)
*/}}

{{/* The service keys, in a fixed order so renders are stable. */}}
{{- define "omnirouter.serviceKeys" -}}
gateway presence identity routing
{{- end -}}

{{/* Component name (app.kubernetes.io/name of each service) and its console script. */}}
{{- define "omnirouter.component" -}}
{{- get (dict "gateway" "channel-gateway" "presence" "agent-presence" "identity" "identity-resolution" "routing" "routing") . -}}
{{- end -}}

{{- define "omnirouter.command" -}}
{{- get (dict "gateway" "omni-gateway" "presence" "omni-presence" "identity" "omni-identity" "routing" "omni-routing") . -}}
{{- end -}}

{{- define "omnirouter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name; each object appends its component (max 63 characters in all). */}}
{{- define "omnirouter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one service's objects: <fullname>-<component>. Context: the per-service dict. */}}
{{- define "omnirouter.serviceName" -}}
{{- printf "%s-%s" (include "omnirouter.fullname" .root) (include "omnirouter.component" .key) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "omnirouter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object (Kubernetes recommended labels). Context: root. */}}
{{- define "omnirouter.labels" -}}
helm.sh/chart: {{ include "omnirouter.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: omnirouter
{{- end -}}

{{/* Selector of every pod of the release (NetworkPolicy). Context: root. */}}
{{- define "omnirouter.releaseSelector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: omnirouter
{{- end -}}

{{/* Selector of one service's pods. The component label keeps the service's migration Job pods (same
name, component "migrate") out of its Service, PDB and NetworkPolicy. Context: per-service dict. */}}
{{- define "omnirouter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "omnirouter.component" .key }}
app.kubernetes.io/component: {{ include "omnirouter.component" .key }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: omnirouter
{{- end -}}

{{/* Labels of one service's objects. Context: per-service dict. */}}
{{- define "omnirouter.serviceLabels" -}}
{{ include "omnirouter.labels" .root }}
app.kubernetes.io/name: {{ include "omnirouter.component" .key }}
app.kubernetes.io/component: {{ include "omnirouter.component" .key }}
{{- end -}}

{{- define "omnirouter.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "omnirouter.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- include "omnirouter.serviceName" . -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{- define "omnirouter.routingConfigMap" -}}
{{- if .Values.routingConfig.existingConfigMap -}}
{{- .Values.routingConfig.existingConfigMap -}}
{{- else -}}
{{- printf "%s-routing-config" (include "omnirouter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* "true" when a routing configuration will be mounted (inline, the chart's example, or a ConfigMap). */}}
{{- define "omnirouter.hasRoutingConfig" -}}
{{- if or .Values.routingConfig.existingConfigMap .Values.routingConfig.inline (.Files.Get "files/routing.yaml") -}}
true
{{- end -}}
{{- end -}}

{{/* The partitions of a topic named in the registry block (values.topics). Context: (dict "root" $ "topic" name). */}}
{{- define "omnirouter.topicPartitions" -}}
{{- $found := 0 -}}
{{- range $slug, $t := .root.Values.topics -}}
{{- if eq $t.name $.topic -}}{{- $found = $t.partitions -}}{{- end -}}
{{- end -}}
{{- if eq (int $found) 0 -}}
{{- fail (printf "topic %q is not in values.topics (the registry)" .topic) -}}
{{- end -}}
{{- $found -}}
{{- end -}}

{{/* Environment common to a service's containers and its migration Job. Context: per-service dict. */}}
{{- define "omnirouter.env" -}}
{{- $root := .root -}}
- name: OMNI_SERVICE_NAME
  value: {{ include "omnirouter.component" .key | quote }}
- name: OMNI_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $root.Values.kafka.bootstrapServers | quote }}
- name: OMNI_TOPIC_PREFIX
  value: {{ $root.Values.kafka.topicPrefix | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.existingSecret }}
      key: {{ $root.Values.database.urlKey }}
- name: HTTP_PORT
  value: {{ .svc.port | quote }}
- name: LOG_FORMAT
  value: json
- name: LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: OMNI_PUBLIC_URL
  value: {{ $root.Values.publicUrl | quote }}
- name: SHUTDOWN_TIMEOUT_S
  value: {{ .svc.shutdownTimeoutSeconds | quote }}
{{- /* Not for migration Jobs: they run before the ConfigMap exists and need no routing config. */}}
{{- if and .svc.mountRoutingConfig (not .migrate) (include "omnirouter.hasRoutingConfig" $root) }}
- name: ROUTING_CONFIG
  value: /etc/omnirouter/routing.yaml
{{- end }}
{{- if eq .key "presence" }}
{{- with $root.Values.identity }}{{ if .enabled }}
- name: IDENTITY_URL
  value: {{ printf "http://%s:%v" (include "omnirouter.serviceName" (dict "root" $root "key" "identity")) .port | quote }}
{{- end }}{{ end }}
{{- with $root.Values.routing }}{{ if .enabled }}
- name: ROUTING_URL
  value: {{ printf "http://%s:%v" (include "omnirouter.serviceName" (dict "root" $root "key" "routing")) .port | quote }}
{{- end }}{{ end }}
{{- end }}
{{- range .svc.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.existingSecret }}
      key: {{ default .name .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}
{{- range $name, $value := .svc.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by Deployments and migration Jobs. Context: root. */}}
{{- define "omnirouter.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
