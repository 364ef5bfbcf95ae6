// Command peer is the benchmark's reference point: a mutating admission webhook written the
// idiomatic way with sigs.k8s.io/controller-runtime (its webhook server, an admission.Handler that
// decodes a typed Pod and answers with admission.PatchResponseFromRaw), doing the same mutation as
// flink-memory-webhook on the benchmark fixtures (bench/fixtures.py).
//
// What it does, exactly (the fixtures' branch of Flink's model, nothing more):
//   - Pod CREATE only; the JobManager container is the one named "jobmanager" or
//     "flink-main-container"; anything else is allowed unchanged.
//   - The total process size is jobmanager.memory.process.size from the container's
//     FLINK_PROPERTIES ("key: value" lines), else the image default 1600m.
//   - Flink's "only total process size given" branch with default options: metaspace 256m,
//     off-heap 128m, JVM overhead = process x 0.1 (a Java float, multiplied in decimal as Flink's
//     MemorySize.multiply does) clamped to [192m, 1g], heap = the rest.
//   - limits.memory and requests.memory become the process size ("<n>Mi" when whole MiB) unless
//     already equal as quantities; in the env vars _JAVA_OPTIONS and FLINK_ENV_JAVA_OPTS_JM, every
//     -Xmx, -Xms and -XX:MaxMetaspaceSize token is set to Flink's value; the annotation
//     flink-memory-webhook/resolved records the breakdown; one warning per change; one log line
//     per decision.
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

// overhead is Flink's MemorySize.multiply(fraction): the float fraction printed as Java's
// Double.toString prints it, multiplied in decimal and truncated; then clamped.
func overhead(process int64) int64 {
	frac, _ := new(big.Rat).SetString(strconv.FormatFloat(float64(overheadFrac), 'g', -1, 64))
	p := new(big.Rat).Mul(new(big.Rat).SetInt64(process), frac)
	raw := new(big.Int).Quo(p.Num(), p.Denom()).Int64()
	if raw < overheadMin {
		return overheadMin
	}
	if raw > overheadMax {
		return overheadMax
	}
	return raw
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

func (h *sizer) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != "CREATE" || req.Kind.Kind != "Pod" {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if n := pod.Spec.Containers[i].Name; n == "jobmanager" || n == "flink-main-container" {
			c = &pod.Spec.Containers[i]
			break
		}
	}
	if c == nil {
		return admission.Allowed("")
	}
	version := imageVersion(c.Image)
	process, source := defaultProcess, "the image's flink-conf.yaml (jobmanager.memory.process.size: 1600m)"
	for _, e := range c.Env {
		if e.Name != "FLINK_PROPERTIES" {
			continue
		}
		for _, line := range strings.Split(e.Value, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "jobmanager.memory.process.size" {
				if b, ok := flinkBytes(v); ok {
					process, source = b, "FLINK_PROPERTIES (jobmanager.memory.process.size:"+v+")"
				}
			}
		}
	}
	ovh := overhead(process)
	heap := process - metaspace - offHeap - ovh
	r := resolved{FlinkVersion: version, TotalProcess: quantity(process), Heap: heap,
		OffHeap: offHeap, Metaspace: metaspace, Overhead: ovh,
		JvmArgs: fmt.Sprintf("-Xmx%d -Xms%d -XX:MaxMetaspaceSize=%d", heap, heap, metaspace),
		Source:  source}

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
	flags := []struct {
		prefix string
		value  int64
	}{{"-Xmx", heap}, {"-Xms", heap}, {"-XX:MaxMetaspaceSize=", metaspace}}
	for i := range c.Env {
		e := &c.Env[i]
		if e.Name != "_JAVA_OPTIONS" && e.Name != "FLINK_ENV_JAVA_OPTS_JM" {
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
	annotation, err := json.Marshal(r)
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
		"decision", "patched", "container", c.Name, "flink", version,
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
