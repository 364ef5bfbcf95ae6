// Command peer is the benchmark's reference point: a mutating admission webhook written the
// idiomatic way with sigs.k8s.io/controller-runtime (its webhook server, an admission.Handler that
// decodes a typed Pod and answers with admission.PatchResponseFromRaw), doing the same mutation as
// flink-memory-webhook on the benchmark fixtures (bench/fixtures.py).
//
// What it does, exactly (the fixtures' branch of Flink's model, nothing more):
//   - Pod CREATE only; the JobManager container is the one named "jobmanager" or
//     "flink-main-container", the TaskManager container the one named "taskmanager" (Flink's
//     standalone manifests); anything else is allowed unchanged. Neither the command, the args nor
//     the labels are read.
//   - The total process size is jobmanager.memory.process.size (taskmanager.memory.process.size)
//     from the container's FLINK_PROPERTIES ("key: value" lines), else the image default 1600m
//     (1728m). No conf file, ConfigMap, -D argument or legacy heap option is read.
//   - JobManager: Flink's "only total process size given" branch with default options
//     (JobManagerProcessUtils): metaspace 256m, off-heap 128m, JVM overhead = process x 0.1
//     clamped to [192m, 1g], heap = the rest.
//   - TaskManager: the same branch of TaskExecutorProcessUtils with default options: metaspace
//     256m, JVM overhead = process x 0.1 clamped to [192m, 1g], total Flink memory = the rest;
//     from it framework heap 128m, framework off-heap 128m, task off-heap 0, managed = total Flink
//     x 0.4, network = total Flink x 0.1 at least 64m and at most 1g up to Flink 1.16 (unbounded
//     from 1.17), task heap = the rest (a negative rest, which Flink rejects, is allowed
//     unchanged here). JVM flags as BashJavaUtils prints them: -Xmx and -Xms = framework + task
//     heap, -XX:MaxDirectMemorySize = framework + task off-heap + network,
//     -XX:MaxMetaspaceSize = metaspace.
//   - Every fraction is a Java float multiplied in decimal and truncated, as Flink's
//     MemorySize.multiply does (for 4g: overhead 429496736, managed 1438814063, network
//     359703515, -Xmx1664299798, the figures Flink 1.18.1's BashJavaUtils prints).
//   - limits.memory and requests.memory become the process size ("<n>Mi" when whole MiB) unless
//     already equal as quantities; in the env vars _JAVA_OPTIONS and FLINK_ENV_JAVA_OPTS_JM
//     (FLINK_ENV_JAVA_OPTS_TM), every -Xmx, -Xms, -XX:MaxMetaspaceSize (and, for a TaskManager,
//     -XX:MaxDirectMemorySize) token is set to Flink's value (the webhook changes only the
//     flags that win: with -Xmx in both variables it leaves FLINK_ENV_JAVA_OPTS_*'s, which
//     _JAVA_OPTIONS overrides; the fixtures set one); the annotation
//     flink-memory-webhook/resolved records the breakdown (for a TaskManager in the webhook's
//     own words, byte for byte); one warning per change; one log line per decision.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	mi             = int64(1) << 20
	resolvedKey    = "flink-memory-webhook/resolved"
	defaultProcess = 1600 * mi
	metaspace      = 256 * mi
	offHeap        = 128 * mi
	overheadMin    = 192 * mi
	overheadMax    = 1024 * mi
	overheadFrac   = float32(0.1)
	warningPrefix  = "flink-memory-webhook: "

	// The TaskManager's defaults (TaskManagerOptions); metaspace and overhead as above.
	tmDefaultProcess = 1728 * mi
	frameworkHeap    = 128 * mi
	frameworkOffHeap = 128 * mi
	taskOffHeap      = 0
	managedFrac      = float32(0.4)
	networkFrac      = float32(0.1)
	networkMin       = 64 * mi
	networkMax1G     = 1024 * mi              // taskmanager.memory.network.max before 1.17
	memorySizeMax    = int64(^uint64(0) >> 1) // MemorySize.MAX_VALUE: network.max from 1.17
)

var log = ctrl.Log.WithName("peer")

type sizer struct {
	decoder admission.Decoder
}

type resolved struct {
	FlinkVersion string `json:"flinkVersion"`
	TotalProcess string `json:"totalProcess"`
	Heap         int64  `json:"heap"`
	OffHeap      int64  `json:"offHeap"`
	Metaspace    int64  `json:"metaspace"`
	Overhead     int64  `json:"overhead"`
	JvmArgs      string `json:"jvmArgs"`
	Source       string `json:"source"`
}

// tmResolved is the webhook's TaskManager annotation, its fields in the webhook's order.
type tmResolved struct {
	FlinkVersion     string `json:"flinkVersion"`
	Role             string `json:"role"`
	TotalProcess     string `json:"totalProcess"`
	FrameworkHeap    int64  `json:"frameworkHeap"`
	TaskHeap         int64  `json:"taskHeap"`
	FrameworkOffHeap int64  `json:"frameworkOffHeap"`
	TaskOffHeap      int64  `json:"taskOffHeap"`
	Network          int64  `json:"network"`
	Managed          int64  `json:"managed"`
	Metaspace        int64  `json:"metaspace"`
	Overhead         int64  `json:"overhead"`
	Limit            string `json:"limit"`
	Request          string `json:"request"`
	JvmArgs          string `json:"jvmArgs"`
	Source           string `json:"source"`
}

// flinkBytes parses a Flink memory size ("2g", "1600m", "1073741824", "1 gb").
func flinkBytes(text string) (int64, bool) {
	s := strings.ToLower(strings.TrimSpace(text))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]int64{"": 1, "b": 1, "bytes": 1, "k": 1 << 10, "kb": 1 << 10,
		"kibibytes": 1 << 10, "m": mi, "mb": mi, "mebibytes": mi, "g": 1 << 30, "gb": 1 << 30,
		"gibibytes": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tebibytes": 1 << 40}
	m, ok := mult[strings.TrimSpace(s[i:])]
	return n * m, ok
}

// jvmBytes parses a JVM size ("4g", "512m", "1073741824").
func jvmBytes(text string) (int64, bool) {
	if text == "" {
		return 0, false
	}
	mult := int64(1)
	switch text[len(text)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = mi
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		text = text[:len(text)-1]
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n * mult, err == nil
}

// fraction is Flink's MemorySize.multiply(fraction) capped to [lo, hi]: the float fraction
// printed as Java's Double.toString prints it (the same digits as Go's shortest for the default
// fractions 0.1 and 0.4), multiplied in decimal and truncated; then clamped.
func fraction(base int64, frac float32, lo, hi int64) int64 {
	f, _ := new(big.Rat).SetString(strconv.FormatFloat(float64(frac), 'g', -1, 64))
	p := new(big.Rat).Mul(new(big.Rat).SetInt64(base), f)
	raw := new(big.Int).Quo(p.Num(), p.Denom()).Int64()
	if raw < lo {
		return lo
	}
	if raw > hi {
		return hi
	}
	return raw
}

func overhead(process int64) int64 {
	return fraction(process, overheadFrac, overheadMin, overheadMax)
}

// tmModel is TaskExecutorProcessUtils' "total process size only" branch with default options.
type tmModel struct {
	overhead, totalFlink, managed, network, taskHeap int64
}

func taskManagerModel(process int64, version string) tmModel {
	var m tmModel
	m.overhead = overhead(process)
	m.totalFlink = process - metaspace - m.overhead
	m.managed = fraction(m.totalFlink, managedFrac, 0, memorySizeMax)
	m.network = fraction(m.totalFlink, networkFrac, networkMin, networkMax(version))
	m.taskHeap = m.totalFlink - frameworkHeap - frameworkOffHeap - taskOffHeap - m.managed -
		m.network
	return m
}

// networkMax is taskmanager.memory.network.max's default: 1g up to 1.16, unbounded from 1.17.
func networkMax(version string) int64 {
	major, minor, _ := strings.Cut(version, ".")
	if n, err := strconv.Atoi(minor); major == "1" && err == nil && n < 17 {
		return networkMax1G
	}
	return memorySizeMax
}

// imageConfFile is the conf file of Flink's images: flink-conf.yaml up to 1.18, config.yaml
// from 1.19.
func imageConfFile(version string) string {
	major, minor, _ := strings.Cut(version, ".")
	if n, err := strconv.Atoi(minor); major == "1" && err == nil && n <= 18 {
		return "flink-conf.yaml"
	}
	return "config.yaml"
}

func quantity(bytes int64) string {
	if bytes%mi == 0 {
		return strconv.FormatInt(bytes/mi, 10) + "Mi"
	}
	return strconv.FormatInt(bytes, 10)
}

func imageVersion(image string) string {
	tag := image[strings.LastIndex(image, ":")+1:]
	parts := strings.SplitN(tag, ".", 3)
	if len(parts) < 2 {
		return "1.20"
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}

// jvmFlag is a JVM option the peer rewrites: its prefix and Flink's value.
type jvmFlag struct {
	prefix string
	value  int64
}

func (h *sizer) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != "CREATE" || req.Kind.Kind != "Pod" {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var c *corev1.Container
	tm := false
	for i := range pod.Spec.Containers {
		n := pod.Spec.Containers[i].Name
		if n == "jobmanager" || n == "flink-main-container" || n == "taskmanager" {
			c = &pod.Spec.Containers[i]
			tm = n == "taskmanager"
			break
		}
	}
	if c == nil {
		return admission.Allowed("")
	}
	version := imageVersion(c.Image)
	key, process := "jobmanager.memory.process.size", defaultProcess
	source := "the image's flink-conf.yaml (jobmanager.memory.process.size: 1600m)"
	role, optsEnv := "jobmanager", "FLINK_ENV_JAVA_OPTS_JM"
	if tm {
		key, process = "taskmanager.memory.process.size", tmDefaultProcess
		source = "the image's " + imageConfFile(version) + " (" + key + ": 1728m)"
		role, optsEnv = "taskmanager", "FLINK_ENV_JAVA_OPTS_TM"
	}
	for _, e := range c.Env {
		if e.Name != "FLINK_PROPERTIES" {
			continue
		}
		for _, line := range strings.Split(e.Value, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == key {
				if b, ok := flinkBytes(v); ok {
					process = b
					if !tm {
						source = "FLINK_PROPERTIES (" + key + ":" + v + ")"
					}
				}
			}
		}
		if tm {
			source += ", edited by FLINK_PROPERTIES"
		}
	}
	var flags []jvmFlag
	var annotated any
	if tm {
		m := taskManagerModel(process, version)
		if m.taskHeap < 0 {
			return admission.Allowed("")
		}
		heap := frameworkHeap + m.taskHeap
		direct := frameworkOffHeap + taskOffHeap + m.network
		flags = []jvmFlag{{"-Xmx", heap}, {"-Xms", heap}, {"-XX:MaxDirectMemorySize=", direct},
			{"-XX:MaxMetaspaceSize=", metaspace}}
		annotated = tmResolved{FlinkVersion: version, Role: role, TotalProcess: quantity(process),
			FrameworkHeap: frameworkHeap, TaskHeap: m.taskHeap, FrameworkOffHeap: frameworkOffHeap,
			TaskOffHeap: taskOffHeap, Network: m.network, Managed: m.managed,
			Metaspace: metaspace, Overhead: m.overhead, Limit: quantity(process),
			Request: quantity(process),
			JvmArgs: fmt.Sprintf("-Xmx%d -Xms%d -XX:MaxDirectMemorySize=%d -XX:MaxMetaspaceSize=%d",
				heap, heap, direct, metaspace),
			Source: source}
	} else {
		ovh := overhead(process)
		heap := process - metaspace - offHeap - ovh
		flags = []jvmFlag{{"-Xmx", heap}, {"-Xms", heap}, {"-XX:MaxMetaspaceSize=", metaspace}}
		annotated = resolved{FlinkVersion: version, TotalProcess: quantity(process), Heap: heap,
			OffHeap: offHeap, Metaspace: metaspace, Overhead: ovh,
			JvmArgs: fmt.Sprintf("-Xmx%d -Xms%d -XX:MaxMetaspaceSize=%d", heap, heap, metaspace),
			Source:  source}
	}

	var warnings []string
	want := resource.MustParse(quantity(process))
	for _, kind := range []string{"limit", "request"} {
		list := &c.Resources.Limits
		if kind == "request" {
			list = &c.Resources.Requests
		}
		old, had := (*list)[corev1.ResourceMemory]
		if had && old.Cmp(want) == 0 {
			continue
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[corev1.ResourceMemory] = want
		from := "none"
		if had {
			from = old.String()
		}
		warnings = append(warnings, fmt.Sprintf("%s%s: memory %s %s -> %s (Flink %s)",
			warningPrefix, c.Name, kind, from, quantity(process), version))
	}
	for i := range c.Env {
		e := &c.Env[i]
		if e.Name != "_JAVA_OPTIONS" && e.Name != optsEnv {
			continue
		}
		words := strings.Fields(e.Value)
		changed := false
		for j, w := range words {
			for _, f := range flags {
				if !strings.HasPrefix(w, f.prefix) {
					continue
				}
				if old, ok := jvmBytes(w[len(f.prefix):]); ok && old != f.value {
					words[j] = f.prefix + strconv.FormatInt(f.value, 10)
					changed = true
					warnings = append(warnings, fmt.Sprintf("%s%s: %s in %s %d -> %d (Flink %s)",
						warningPrefix, c.Name, strings.TrimSuffix(f.prefix, "="), e.Name, old,
						f.value, version))
				}
			}
		}
		if changed {
			e.Value = strings.Join(words, " ")
		}
	}
	annotation, err := json.Marshal(annotated)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[resolvedKey] = string(annotation)

	marshaled, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, marshaled)
	resp.Warnings = warnings
	log.Info("admission", "uid", req.UID, "namespace", req.Namespace, "name", pod.GenerateName,
		"decision", "patched", "container", c.Name, "role", role, "flink", version,
		"total_process", process, "changes", len(warnings))
	return resp
}

func main() {
	certFile := flag.String("tls-cert-file", "", "PEM certificate")
	keyFile := flag.String("tls-key-file", "", "PEM private key")
	host := flag.String("listen-address", "127.0.0.1", "address")
	port := flag.Int("port", 9443, "TLS port")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := webhook.NewServer(webhook.Options{
		Host:     *host,
		Port:     *port,
		CertDir:  filepath.Dir(*certFile),
		CertName: filepath.Base(*certFile),
		KeyName:  filepath.Base(*keyFile),
	})
	srv.Register("/mutate", &webhook.Admission{Handler: &sizer{decoder: admission.NewDecoder(scheme)}})
	if err := srv.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
