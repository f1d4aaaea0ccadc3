// controller-runtime peer for kube-runtime's benchmarks (see benches/peers/README.md for the
// protocol): an informer-backed cache (watch mode) or a manager with a no-op reconciler
// (controller mode), printing JSON lines on stdout. --variant strip installs the cache's
// TransformStripManagedFields; --variant metadata caches PartialObjectMetadata.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The embedded API server's load generator stamps its commit time (unix nanoseconds) here.
const emitted = "kube-runtime.dev/emit-ns"

type stats struct {
	mu     sync.Mutex
	events int64
	lagged int64
	lags   []float64
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (s *stats) observe(annotations map[string]string) {
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	if v, ok := annotations[emitted]; ok {
		if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.lags = append(s.lags, t-float64(ns)/1e9)
		}
	}
}

// report prints cumulative events and the lag percentiles of the window since the last report.
func (s *stats) report(final bool) {
	s.mu.Lock()
	lags := s.lags
	s.lags = nil
	s.lagged += int64(len(lags))
	events, lagged := s.events, s.lagged
	s.mu.Unlock()
	sort.Float64s(lags)
	pct := func(p float64) any {
		if len(lags) == 0 {
			return nil
		}
		return lags[int(float64(len(lags)-1)*p)]
	}
	var max any
	if len(lags) > 0 {
		max = lags[len(lags)-1]
	}
	out, _ := json.Marshal(map[string]any{"events": events, "t": now(), "final": final,
		"lag_p50": pct(0.5), "lag_p99": pct(0.99), "lag_max": max, "window": len(lags), "lagged": lagged})
	fmt.Println(string(out))
}

type noop struct {
	c      client.Client
	s      *stats
	pause  time.Duration
	newObj func() client.Object
}

func (r *noop) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := r.newObj()
	if err := r.c.Get(ctx, req.NamespacedName, obj); err == nil {
		r.s.observe(obj.GetAnnotations())
	}
	if r.pause > 0 {
		time.Sleep(r.pause)
	}
	return reconcile.Result{}, nil
}

func main() {
	// controller-runtime's client/config package registers --kubeconfig itself.
	namespace := flag.String("namespace", "default", "namespace to watch")
	mode := flag.String("mode", "watch", "watch or controller")
	resource := flag.String("resource", "configmaps", "configmaps or pods")
	concurrency := flag.Int("concurrency", 1, "MaxConcurrentReconciles")
	reconcileMs := flag.Float64("reconcile-ms", 0, "controller mode: reconcile duration (ms)")
	variant := flag.String("variant", "full", "full, strip or metadata")
	flag.Parse()
	log.SetLogger(logr.Discard()) // no logging: the peer speaks only the protocol

	cfg, err := clientcmd.BuildConfigFromFlags("", flag.Lookup("kubeconfig").Value.String())
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	kind := "ConfigMap"
	newObj := func() client.Object { return &corev1.ConfigMap{} }
	newList := func() client.ObjectList { return &corev1.ConfigMapList{} }
	if *resource == "pods" {
		kind = "Pod"
		newObj = func() client.Object { return &corev1.Pod{} }
		newList = func() client.ObjectList { return &corev1.PodList{} }
	}
	if *variant == "metadata" && *mode == "watch" {
		gvk := corev1.SchemeGroupVersion.WithKind(kind)
		newObj = func() client.Object {
			o := &metav1.PartialObjectMetadata{}
			o.SetGroupVersionKind(gvk)
			return o
		}
		newList = func() client.ObjectList {
			l := &metav1.PartialObjectMetadataList{}
			l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind + "List"))
			return l
		}
	}
	cacheOpts := ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{*namespace: {}}}
	if *variant == "strip" {
		cacheOpts.DefaultTransform = ctrlcache.TransformStripManagedFields()
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
	})
	if err != nil {
		panic(err)
	}
	s := &stats{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if *mode == "controller" {
		err = ctrl.NewControllerManagedBy(mgr).For(newObj()).
			WithOptions(controller.Options{MaxConcurrentReconciles: *concurrency}).
			Complete(&noop{c: mgr.GetClient(), s: s, newObj: newObj,
				pause: time.Duration(*reconcileMs * float64(time.Millisecond))})
		if err != nil {
			panic(err)
		}
	} else {
		inf, err := mgr.GetCache().GetInformer(ctx, newObj())
		if err != nil {
			panic(err)
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, o any) { s.observe(o.(client.Object).GetAnnotations()) },
			DeleteFunc: func(o any) {
				if obj, ok := o.(client.Object); ok {
					s.observe(obj.GetAnnotations())
				}
			},
		})
	}
	// versions lists the cache: {"namespace/name": resourceVersion}.
	versions := func() map[string]string {
		list := newList()
		out := map[string]string{}
		if err := mgr.GetCache().List(context.Background(), list, client.InNamespace(*namespace)); err != nil {
			return out
		}
		items, _ := meta(list)
		for _, o := range items {
			out[o.GetNamespace()+"/"+o.GetName()] = o.GetResourceVersion()
		}
		return out
	}
	go func() {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			out, _ := json.Marshal(map[string]any{"synced": len(versions()), "t": now(), "variant": *variant})
			fmt.Println(string(out))
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				s.report(false)
			}
		}
	}()
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		<-sigs
		if path := os.Getenv("BENCH_DUMP"); path != "" {
			data, _ := json.Marshal(versions())
			if os.WriteFile(path+".tmp", data, 0o644) == nil {
				_ = os.Rename(path+".tmp", path)
			}
		}
		cancel()
	}()
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	s.report(true)
}

// meta returns the items of a typed or metadata list as client.Objects.
func meta(list client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	switch l := list.(type) {
	case *corev1.ConfigMapList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.PodList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *metav1.PartialObjectMetadataList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	default:
		return nil, fmt.Errorf("unexpected list %T", list)
	}
	return out, nil
}
