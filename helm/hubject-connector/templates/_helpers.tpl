{{- define "hc.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hc.labels" -}}
{{ include "hc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The connector container: the same in the Deployment and in the sidecar snippet. */}}
{{- define "hc.container" -}}
name: hubject-connector
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["serve"]
env:
  - name: HUBJECT_CONNECTOR_CONFIG
    value: /etc/hubject-connector/config/config.toml
  - name: HUBJECT_CONNECTOR_INBOUND__PORT
    value: {{ .Values.ports.inbound | quote }}
  - name: HUBJECT_CONNECTOR_OPS__HOST
    value: "0.0.0.0"
  - name: HUBJECT_CONNECTOR_OPS__PORT
    value: {{ .Values.ports.ops | quote }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
ports:
  - name: inbound
    containerPort: {{ .Values.ports.inbound }}
    protocol: TCP
  - name: ops
    containerPort: {{ .Values.ports.ops }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: ops
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: ops
  periodSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet:
    path: /healthz
    port: ops
  periodSeconds: 2
  failureThreshold: 30
resources:
{{ toYaml .Values.resources | indent 2 }}
securityContext:
{{ toYaml .Values.securityContext | indent 2 }}
volumeMounts:
  - name: config
    mountPath: /etc/hubject-connector/config
    readOnly: true
  - name: client-certificate
    mountPath: /etc/hubject-connector/client
    readOnly: true
  - name: server-certificate
    mountPath: /etc/hubject-connector/server
    readOnly: true
  - name: hubject-ca
    mountPath: /etc/hubject-connector/hubject-ca
    readOnly: true
  - name: data
    mountPath: /var/lib/hubject-connector
  # The root file system is read-only; Python and aiohttp may still want a /tmp.
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{/* The volumes the container mounts; Secrets as whole directories, so rotation reaches them. */}}
{{- define "hc.volumes" -}}
- name: config
  configMap:
    name: {{ include "hc.fullname" . }}
- name: client-certificate
  secret:
    secretName: {{ .Values.certificates.clientSecret }}
- name: server-certificate
  secret:
    secretName: {{ .Values.certificates.serverSecret }}
- name: hubject-ca
  secret:
    secretName: {{ .Values.certificates.hubjectCaSecret }}
- name: data
{{- if and .Values.persistence.enabled (eq .Values.mode "standalone") }}
  persistentVolumeClaim:
    claimName: {{ include "hc.fullname" . }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end -}}
