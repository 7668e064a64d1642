// Command helm-render renders a Helm 3 chart the way `helm template` does, on machines without a
// helm binary. It is Go text/template + Sprig v3 + the functions Helm adds, with Helm's values
// coalescing, built-in objects, manifest splitting and ordering. README.md lists what it does not
// implement (subcharts, schema validation — done by the caller, render.ts —, toToml, …).
//
// Build (GOPATH mode, Debian's Sprig 3.2.3 and sigs.k8s.io/yaml):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o helm-render .
//
// Usage:
//
//	helm-render --release NAME --chart DIR [-n NS] [-f values.yaml]... [--set a.b=c]...
//	            [--is-upgrade] [--revision N] [--kube-version v1.30.0] [-a api/version]...
//	            [--lookup objects.json] [--output yaml|json]
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

// ---------------------------------------------------------------------------------------------
// Command line

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	release, chartDir, namespace  string
	valuesFiles, sets, setStrings stringList
	apiVersions                   stringList
	isUpgrade                     bool
	revision                      int
	kubeVersion                   string
	lookupFile                    string
	output                        string
}

func parseArgs(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("helm-render", flag.ContinueOnError)
	fs.StringVar(&o.release, "release", "", "release name")
	fs.StringVar(&o.chartDir, "chart", "", "chart directory")
	fs.StringVar(&o.namespace, "namespace", "default", "release namespace")
	fs.StringVar(&o.namespace, "n", "default", "release namespace (short)")
	fs.Var(&o.valuesFiles, "values", "values file (repeatable, later wins)")
	fs.Var(&o.valuesFiles, "f", "values file (short)")
	fs.Var(&o.sets, "set", "a.b=c[,d=e] (repeatable)")
	fs.Var(&o.setStrings, "set-string", "like --set, values stay strings")
	fs.Var(&o.apiVersions, "api-versions", "extra API versions for .Capabilities.APIVersions.Has")
	fs.Var(&o.apiVersions, "a", "extra API version (short)")
	fs.BoolVar(&o.isUpgrade, "is-upgrade", false, ".Release.IsUpgrade true, .Release.IsInstall false")
	fs.IntVar(&o.revision, "revision", 1, ".Release.Revision")
	fs.StringVar(&o.kubeVersion, "kube-version", "v1.30.0", ".Capabilities.KubeVersion")
	fs.StringVar(&o.lookupFile, "lookup", "", "JSON file of existing objects that lookup may return")
	fs.StringVar(&o.output, "output", "yaml", "yaml (like helm template) or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// Like helm template: NAME CHART as positional arguments.
	rest := fs.Args()
	if o.release == "" && len(rest) > 0 {
		o.release, rest = rest[0], rest[1:]
	}
	if o.chartDir == "" && len(rest) > 0 {
		o.chartDir, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %v (flags go before NAME CHART)", rest)
	}
	if o.release == "" || o.chartDir == "" {
		return nil, errors.New("a release name and a chart directory are required")
	}
	if o.output != "yaml" && o.output != "json" {
		return nil, fmt.Errorf("--output must be yaml or json, not %q", o.output)
	}
	return o, nil
}

// ---------------------------------------------------------------------------------------------
// Chart loading

// Maintainer and Metadata mirror helm.sh/helm/v3/pkg/chart: templates see `.Chart.AppVersion` etc.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type Dependency struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Repository string `json:"repository"`
}

type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

type chart struct {
	dir       string
	meta      *Metadata
	values    map[string]interface{}
	templates map[string]string // "<chart>/templates/<rel>" → source
	files     Files
}

func loadChart(dir string) (*chart, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml file is missing in %s", dir)
	}
	meta := &Metadata{}
	if err := yaml.Unmarshal(raw, meta); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %v", err)
	}
	if meta.APIVersion != "v2" {
		return nil, fmt.Errorf("Chart.yaml: apiVersion %q is not supported (Helm 3 charts use v2)", meta.APIVersion)
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	if meta.Type == "library" {
		return nil, errors.New("library charts are not installable")
	}
	if len(meta.Dependencies) > 0 {
		return nil, errors.New("Chart.yaml declares dependencies: subcharts are not supported by helm-render")
	}
	if st, err := os.Stat(filepath.Join(dir, "charts")); err == nil && st.IsDir() {
		return nil, errors.New("the chart has a charts/ directory: subcharts are not supported by helm-render")
	}
	values := map[string]interface{}{}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if err := yaml.Unmarshal(raw, &values); err != nil {
			return nil, fmt.Errorf("cannot load values.yaml: %v", err)
		}
		if values == nil {
			values = map[string]interface{}{}
		}
	}
	c := &chart{dir: dir, meta: meta, values: values, templates: map[string]string{}, files: Files{}}
	ignore := loadHelmignore(dir)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.matches(rel, info.IsDir()) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() {
			return nil
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.templates[meta.Name+"/"+rel] = string(content)
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" || rel == ".helmignore":
		default:
			c.files[rel] = content
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// helmignore is the subset of .helmignore we honour: shell globs on the path or the base name,
// a trailing "/" for directories, "#" comments. Negation ("!") is not supported.
type helmignore []string

func loadHelmignore(dir string) helmignore {
	raw, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	if err != nil {
		return nil
	}
	var out helmignore
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		out = append(out, line)
	}
	return out
}

func (h helmignore) matches(rel string, isDir bool) bool {
	for _, pattern := range h {
		p := pattern
		if strings.HasSuffix(p, "/") {
			if !isDir {
				continue
			}
			p = strings.TrimSuffix(p, "/")
		}
		p = strings.TrimPrefix(p, "/")
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok && !strings.Contains(p, "/") {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// Values: -f files merged in order, then --set, then coalesced over the chart's values.yaml.

func istable(v interface{}) bool {
	_, ok := v.(map[string]interface{})
	return ok
}

// mergeMaps is Helm's merge of user-supplied values files: maps merge deeply, anything else in b
// replaces a's value (a null included, which coalescing later turns into a deletion).
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if om, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(om, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce folds the chart defaults (src) under the user's values (dst), like Helm's
// CoalesceTables: a key the user set to null is deleted, tables merge, user scalars win.
func coalesce(dst, src map[string]interface{}, prefix string, warn func(string)) map[string]interface{} {
	if dst == nil {
		dst = map[string]interface{}{}
	}
	for key, val := range src {
		full := strings.TrimPrefix(prefix+"."+key, ".")
		dv, ok := dst[key]
		switch {
		case ok && dv == nil:
			delete(dst, key)
		case !ok:
			dst[key] = deepCopy(val)
		case istable(val):
			if istable(dv) {
				coalesce(dv.(map[string]interface{}), val.(map[string]interface{}), full, warn)
			} else {
				warn(fmt.Sprintf("warning: cannot overwrite table with non table for %s (%v)", full, val))
			}
		case istable(dv) && val != nil:
			warn(fmt.Sprintf("warning: destination for %s is a table. Ignoring non-table value (%v)", full, val))
		}
	}
	return dst
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

// --set parsing: the parts of Helm's strvals the chart's users need — comma-separated
// assignments, dotted keys, list indices (`a[0].b=x`), `{a,b}` lists, backslash escapes, and
// typed scalars (integers, true/false, null) unless --set-string.

type setToken struct {
	key   string
	index int // -1: a map key
}

func splitUnescaped(s string, sep rune, respectBraces bool) []string {
	var parts []string
	var cur strings.Builder
	depth := 0
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune('\\')
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case respectBraces && r == '{':
			depth++
			cur.WriteRune(r)
		case respectBraces && r == '}':
			depth--
			cur.WriteRune(r)
		case r == sep && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if escaped {
		cur.WriteRune('\\')
	}
	parts = append(parts, cur.String())
	return parts
}

func unescape(s string) string {
	var out strings.Builder
	escaped := false
	for _, r := range s {
		if escaped {
			out.WriteRune(r)
			escaped = false
		} else if r == '\\' {
			escaped = true
		} else {
			out.WriteRune(r)
		}
	}
	return out.String()
}

var indexRe = regexp.MustCompile(`^(.*?)\[(\d+)\]$`)

func parseSetKey(key string) ([]setToken, error) {
	var tokens []setToken
	for _, part := range splitUnescaped(key, '.', false) {
		var indices []int
		for {
			m := indexRe.FindStringSubmatch(part)
			if m == nil {
				break
			}
			i, _ := strconv.Atoi(m[2])
			indices = append([]int{i}, indices...)
			part = m[1]
		}
		if part == "" {
			return nil, fmt.Errorf("key %q has an empty segment", key)
		}
		tokens = append(tokens, setToken{key: unescape(part), index: -1})
		for _, i := range indices {
			tokens = append(tokens, setToken{index: i})
		}
	}
	return tokens, nil
}

var intRe = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

func typedValue(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if intRe.MatchString(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	return s
}

func parseSetValue(raw string, asString bool) interface{} {
	if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
		inner := raw[1 : len(raw)-1]
		list := []interface{}{}
		if inner == "" {
			return list
		}
		for _, item := range splitUnescaped(inner, ',', true) {
			list = append(list, typedValue(unescape(item), asString))
		}
		return list
	}
	return typedValue(unescape(raw), asString)
}

func assign(container interface{}, tokens []setToken, value interface{}) (interface{}, error) {
	tok := tokens[0]
	last := len(tokens) == 1
	if tok.index < 0 {
		m, ok := container.(map[string]interface{})
		if !ok {
			m = map[string]interface{}{}
		}
		if last {
			m[tok.key] = value
			return m, nil
		}
		child, err := assign(m[tok.key], tokens[1:], value)
		if err != nil {
			return nil, err
		}
		m[tok.key] = child
		return m, nil
	}
	if tok.index > 65536 {
		return nil, fmt.Errorf("list index %d is too large", tok.index)
	}
	list, _ := container.([]interface{})
	for len(list) <= tok.index {
		list = append(list, nil)
	}
	if last {
		list[tok.index] = value
		return list, nil
	}
	child, err := assign(list[tok.index], tokens[1:], value)
	if err != nil {
		return nil, err
	}
	list[tok.index] = child
	return list, nil
}

func applySet(dest map[string]interface{}, expr string, asString bool) error {
	for _, pair := range splitUnescaped(expr, ',', true) {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		kv := splitUnescaped(pair, '=', true)
		if len(kv) < 2 {
			return fmt.Errorf("failed parsing --set data: key %q has no value", pair)
		}
		key, raw := kv[0], strings.Join(kv[1:], "=")
		tokens, err := parseSetKey(key)
		if err != nil {
			return fmt.Errorf("failed parsing --set data: %v", err)
		}
		if _, err := assign(dest, tokens, parseSetValue(raw, asString)); err != nil {
			return fmt.Errorf("failed parsing --set data: %v", err)
		}
	}
	return nil
}

func userValues(o *options) (map[string]interface{}, error) {
	base := map[string]interface{}{}
	for _, f := range o.valuesFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read values file %s: %v", f, err)
		}
		current := map[string]interface{}{}
		if err := yaml.Unmarshal(raw, &current); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %v", f, err)
		}
		base = mergeMaps(base, current)
	}
	for _, s := range o.sets {
		if err := applySet(base, s, false); err != nil {
			return nil, err
		}
	}
	for _, s := range o.setStrings {
		if err := applySet(base, s, true); err != nil {
			return nil, err
		}
	}
	return base, nil
}

// ---------------------------------------------------------------------------------------------
// Built-in objects

// Files is `.Files`: the chart's non-template files (Helm's Get, GetBytes, Glob, Lines,
// AsConfig, AsSecrets).
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Get(name string) string      { return string(f[name]) }
func (f Files) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Glob matches with path.Match (no `**`, unlike Helm's gobwas/glob).
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, content := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = content
		}
	}
	return out
}

func (f Files) AsConfig() string {
	m := map[string]string{}
	for name, content := range f {
		m[path.Base(name)] = string(content)
	}
	return toYAML(m)
}

func (f Files) AsSecrets() string {
	m := map[string]string{}
	for name, content := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(content)
	}
	return toYAML(m)
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv KubeVersion) String() string     { return kv.Version }
func (kv KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

// Has reports whether "group/version" (or "group/version/Kind") is served.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type HelmVersion struct {
	Version      string
	GitCommit    string
	GitTreeState string
	GoVersion    string
}

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion HelmVersion
}

// The built-in API versions of a current Kubernetes (what `helm template` assumes without a cluster).
var defaultAPIVersions = []string{
	"v1", "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
	"apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1", "autoscaling/v2",
	"batch/v1", "certificates.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"events.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1", "networking.k8s.io/v1", "node.k8s.io/v1",
	"policy/v1", "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1",
}

var kubeVersionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?`)

func capabilities(o *options) (*Capabilities, error) {
	m := kubeVersionRe.FindStringSubmatch(o.kubeVersion)
	if m == nil {
		return nil, fmt.Errorf("invalid kube version %q", o.kubeVersion)
	}
	patch := m[3]
	if patch == "" {
		patch = ".0"
	}
	apis := append(VersionSet{}, defaultAPIVersions...)
	apis = append(apis, o.apiVersions...)
	return &Capabilities{
		KubeVersion: KubeVersion{Version: "v" + m[1] + "." + m[2] + patch, Major: m[1], Minor: m[2]},
		APIVersions: apis,
		HelmVersion: HelmVersion{Version: "v3.16.0-helm-render", GoVersion: "go1.19"},
	}, nil
}

// ---------------------------------------------------------------------------------------------
// Template functions

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// lookupTable answers `lookup` from a fixture of existing objects (empty without one, like
// `helm template`, which has no cluster).
type lookupTable []map[string]interface{}

func loadLookup(file string) (lookupTable, error) {
	if file == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read lookup file: %v", err)
	}
	var list []map[string]interface{}
	if err := json.Unmarshal(raw, &list); err != nil {
		var wrapped struct {
			Items []map[string]interface{} `json:"items"`
		}
		if err2 := json.Unmarshal(raw, &wrapped); err2 != nil {
			return nil, fmt.Errorf("lookup file must be a JSON array of objects (or {items: [...]}): %v", err)
		}
		list = wrapped.Items
	}
	return list, nil
}

func (t lookupTable) lookup(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
	var items []interface{}
	for _, obj := range t {
		meta, _ := obj["metadata"].(map[string]interface{})
		ns, _ := meta["namespace"].(string)
		n, _ := meta["name"].(string)
		if obj["apiVersion"] != apiVersion || obj["kind"] != kind || ns != namespace {
			continue
		}
		if name == "" {
			items = append(items, deepCopy(obj))
		} else if n == name {
			return deepCopy(obj).(map[string]interface{}), nil
		}
	}
	if name == "" {
		if items == nil {
			items = []interface{}{}
		}
		return map[string]interface{}{"apiVersion": apiVersion, "kind": kind + "List", "items": items}, nil
	}
	return map[string]interface{}{}, nil
}

// helmError wraps the message of `required` and `fail` so the caller can print it like Helm.
const maxIncludeDepth = 1000

type engine struct {
	root     *template.Template
	depth    map[string]int
	lookups  lookupTable
	warnings []string
}

func (e *engine) funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these: templates must not read the renderer's environment.
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["toToml"] = func(interface{}) (string, error) {
		return "", errors.New("toToml is not implemented by helm-render")
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.depth[name] > maxIncludeDepth {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		e.depth[name]++
		defer func() { e.depth[name]-- }()
		var buf strings.Builder
		if err := e.root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := e.root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = e.lookups.lookup
	return f
}

var execErrorRe = regexp.MustCompile(`^template: ([^:]+(?::\d+)*): (?:executing "[^"]*" at <[^>]*>: )?(?:error calling \w+: )*`)

// cleanupExecError turns Go's template error into Helm's form:
// `execution error at (phoenix/templates/x.yaml:3:5): domain is required`.
func cleanupExecError(err error) error {
	msg := err.Error()
	m := execErrorRe.FindStringSubmatch(msg)
	if m == nil {
		return err
	}
	rest := msg[len(m[0]):]
	// Nested includes repeat the prefix; the innermost message is what the user needs.
	for {
		n := execErrorRe.FindStringSubmatch(rest)
		if n == nil {
			break
		}
		rest = rest[len(n[0]):]
	}
	return fmt.Errorf("execution error at (%s): %s", m[1], rest)
}

// sortTemplates is Helm's render order: deeper paths first, then reverse lexical order.
func sortTemplates(names []string) {
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca != cb {
			return ca > cb
		}
		return a > b
	})
}

// ---------------------------------------------------------------------------------------------
// Manifests

var separatorRe = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// installOrder is Helm's kind order for `helm install` and `helm template`.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

type manifest struct {
	Source  string                 `json:"source"`
	Content string                 `json:"content"`
	Object  map[string]interface{} `json:"object"`
	hook    bool
	weight  int
}

func splitManifests(source, text string) ([]manifest, error) {
	var out []manifest
	for _, doc := range separatorRe.Split(strings.TrimSpace(text), -1) {
		doc = strings.TrimSpace(doc)
		if doc == "" {
			continue
		}
		var obj map[string]interface{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("YAML parse error on %s: %v", source, err)
		}
		if len(obj) == 0 {
			continue // comments only
		}
		if _, ok := obj["kind"].(string); !ok {
			return nil, fmt.Errorf("YAML parse error on %s: a document has no kind", source)
		}
		m := manifest{Source: source, Content: doc, Object: obj}
		meta, _ := obj["metadata"].(map[string]interface{})
		ann, _ := meta["annotations"].(map[string]interface{})
		if _, ok := ann["helm.sh/hook"]; ok {
			m.hook = true
			if w, ok := ann["helm.sh/hook-weight"].(string); ok {
				m.weight, _ = strconv.Atoi(w)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------------

var releaseNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

type result struct {
	Values    map[string]interface{} `json:"values"`
	Manifests []manifest             `json:"manifests"`
	Notes     string                 `json:"notes"`
	Warnings  []string               `json:"warnings"`
	Error     string                 `json:"error,omitempty"`
}

func render(o *options, res *result) error {
	if !releaseNameRe.MatchString(o.release) || len(o.release) > 53 {
		return fmt.Errorf("invalid release name %q: must match %s and be at most 53 characters", o.release, releaseNameRe)
	}
	c, err := loadChart(o.chartDir)
	if err != nil {
		return err
	}
	caps, err := capabilities(o)
	if err != nil {
		return err
	}
	if c.meta.KubeVersion != "" {
		compare := sprig.TxtFuncMap()["semverCompare"].(func(string, string) (bool, error))
		ok, err := compare(c.meta.KubeVersion, caps.KubeVersion.Version)
		if err != nil {
			return fmt.Errorf("Chart.yaml kubeVersion %q: %v", c.meta.KubeVersion, err)
		}
		if !ok {
			return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.meta.KubeVersion, caps.KubeVersion.Version)
		}
	}
	user, err := userValues(o)
	if err != nil {
		return err
	}
	e := &engine{depth: map[string]int{}}
	values := coalesce(user, c.values, "", func(w string) { e.warnings = append(e.warnings, w) })
	res.Values = values
	e.lookups, err = loadLookup(o.lookupFile)
	if err != nil {
		return err
	}

	names := make([]string, 0, len(c.templates))
	for name := range c.templates {
		names = append(names, name)
	}
	sortTemplates(names)
	e.root = template.New("gotpl").Option("missingkey=zero").Funcs(e.funcMap())
	for _, name := range names {
		if _, err := e.root.New(name).Parse(c.templates[name]); err != nil {
			return fmt.Errorf("parse error at (%s): %v", name, strings.TrimPrefix(err.Error(), "template: "))
		}
	}
	release := map[string]interface{}{
		"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
		"IsInstall": !o.isUpgrade, "IsUpgrade": o.isUpgrade, "Revision": o.revision,
	}
	basePath := c.meta.Name + "/templates"
	var manifests []manifest
	for _, name := range names {
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": values, "Release": release, "Chart": c.meta, "Capabilities": caps,
			"Files": c.files, "Template": map[string]interface{}{"Name": name, "BasePath": basePath},
			"Subcharts": map[string]interface{}{},
		}
		var buf strings.Builder
		if err := e.root.ExecuteTemplate(&buf, name, top); err != nil {
			return cleanupExecError(err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.HasSuffix(name, "NOTES.txt") {
			if name == basePath+"/NOTES.txt" {
				res.Notes = text
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		docs, err := splitManifests(name, text)
		if err != nil {
			return err
		}
		manifests = append(manifests, docs...)
	}
	// helm template: regular manifests in install order, then hooks by weight.
	sort.SliceStable(manifests, func(i, j int) bool {
		a, b := manifests[i], manifests[j]
		if a.hook != b.hook {
			return !a.hook
		}
		if a.hook && a.weight != b.weight {
			return a.weight < b.weight
		}
		ka, kb := kindRank(a.Object["kind"].(string)), kindRank(b.Object["kind"].(string))
		if ka != kb {
			return ka < kb
		}
		return a.Source < b.Source
	})
	res.Manifests = manifests
	res.Warnings = e.warnings
	return nil
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(2)
	}
	res := &result{Manifests: []manifest{}, Warnings: []string{}}
	renderErr := render(o, res)
	if o.output == "json" {
		// JSON mode always exits 0 when it could write its answer: the caller validates the values
		// against values.schema.json first and reports a schema error before a template error.
		if renderErr != nil {
			res.Error = renderErr.Error()
		}
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	if renderErr != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", renderErr)
		os.Exit(1)
	}
	var out bytes.Buffer
	for _, m := range res.Manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.Source, m.Content)
	}
	os.Stdout.Write(out.Bytes())
}
