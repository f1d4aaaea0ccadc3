// controller-runtime peer for kube-runtime's benchmarks (see benches/peers/README.md for the
// protocol): an informer-backed cache (watch mode) or a manager with a no-op reconciler
// (controller mode), printing JSON lines on stdout.
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

	corev1 "k8s.io/api/core/v1"
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

const emitted = "bench.kube-runtime.io/emitted"

type stats struct {
	mu     sync.Mutex
	events int64
	lags   []float64
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (s *stats) observe(annotations map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	if v, ok := annotations[emitted]; ok {
		if t, err := strconv.ParseFloat(v, 64); err == nil {
			s.lags = append(s.lags, now()-t)
		}
	}
}

func (s *stats) report(final bool) {
	s.mu.Lock()
	lags := append([]float64(nil), s.lags...)
	events := s.events
	s.mu.Unlock()
	sort.Float64s(lags)
	pct := func(p float64) any {
		if len(lags) == 0 {
			return nil
		}
		return lags[int(float64(len(lags)-1)*p)]
	}
	out, _ := json.Marshal(map[string]any{"events": events, "t": now(), "final": final,
		"lag_p50": pct(0.5), "lag_p99": pct(0.99), "lagged": len(lags)})
	fmt.Println(string(out))
}

type noop struct {
	c client.Client
	s *stats
	newObj func() client.Object
}

func (r *noop) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := r.newObj()
	if err := r.c.Get(ctx, req.NamespacedName, obj); err == nil {
		r.s.observe(obj.GetAnnotations())
	}
	return reconcile.Result{}, nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", "kubeconfig", "kubeconfig path")
	namespace := flag.String("namespace", "default", "namespace to watch")
	mode := flag.String("mode", "watch", "watch or controller")
	resource := flag.String("resource", "configmaps", "configmaps or pods")
	concurrency := flag.Int("concurrency", 1, "MaxConcurrentReconciles")
	flag.Parse()
	log.SetLogger(log.Log) // silence the "log.SetLogger(...) was never called" warning

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	newObj := func() client.Object { return &corev1.ConfigMap{} }
	if *resource == "pods" {
		newObj = func() client.Object { return &corev1.Pod{} }
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{*namespace: {}}},
	})
	if err != nil {
		panic(err)
	}
	s := &stats{}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	if *mode == "controller" {
		err = ctrl.NewControllerManagedBy(mgr).For(newObj()).
			WithOptions(controller.Options{MaxConcurrentReconciles: *concurrency}).
			Complete(&noop{c: mgr.GetClient(), s: s, newObj: newObj})
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
	go func() {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			list := &corev1.ConfigMapList{}
			n := 0
			if *resource == "pods" {
				pl := &corev1.PodList{}
				_ = mgr.GetCache().List(ctx, pl, client.InNamespace(*namespace))
				n = len(pl.Items)
			} else {
				_ = mgr.GetCache().List(ctx, list, client.InNamespace(*namespace))
				n = len(list.Items)
			}
			out, _ := json.Marshal(map[string]any{"synced": n, "t": now()})
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
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	s.report(true)
}
