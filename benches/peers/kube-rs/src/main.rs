//! kube-rs peer for kube-runtime's benchmarks (see benches/peers/README.md for the protocol).
//!
//! Watch mode: `reflector(writer, watcher(..)).default_backoff()` into a Store (`--variant strip`
//! clears managedFields with `.modify(..)`, `--variant metadata` watches `Api<PartialObjectMeta<K>>`).
//! Controller mode: `Controller::new(..).run(..)` with a reconcile that records the lag and
//! optionally sleeps `--reconcile-ms`.
use std::{
    collections::BTreeMap,
    env,
    fmt::Debug,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{Stream, StreamExt};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Pod},
    NamespaceResourceScope,
};
use kube::{
    config::{KubeConfigOptions, Kubeconfig},
    core::PartialObjectMeta,
    runtime::{
        controller::{self, Action},
        reflector,
        reflector::Store,
        watcher, Controller, WatchStreamExt,
    },
    Api, Client, Config, Resource, ResourceExt,
};
use serde_json::{json, Value};

/// The embedded API server's load generator stamps its commit time (unix nanoseconds) here.
const EMITTED: &str = "kube-runtime.dev/emit-ns";

type Dumper = Arc<Mutex<Option<Box<dyn Fn() -> Value + Send>>>>;

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[derive(Default)]
struct Stats {
    events: u64,
    lagged: u64,
    lags: Vec<f64>,
}

impl Stats {
    fn observe(&mut self, annotations: &BTreeMap<String, String>) {
        self.events += 1;
        if let Some(ns) = annotations.get(EMITTED).and_then(|v| v.parse::<u128>().ok()) {
            self.lags.push(now() - ns as f64 / 1e9);
        }
    }

    /// Lag percentiles cover the lags observed since the previous report (a window).
    fn report(&mut self, final_: bool) -> Value {
        let mut lags = std::mem::take(&mut self.lags);
        lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
        self.lagged += lags.len() as u64;
        let pct = |p: f64| {
            if lags.is_empty() {
                None
            } else {
                Some(lags[((lags.len() - 1) as f64 * p) as usize])
            }
        };
        json!({"events": self.events, "t": now(), "final": final_, "lag_p50": pct(0.5),
               "lag_p99": pct(0.99), "lag_max": lags.last(), "window": lags.len(),
               "lagged": self.lagged})
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn dumper<K>(reader: Store<K>) -> Box<dyn Fn() -> Value + Send>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    Box::new(move || {
        let mut m = serde_json::Map::new();
        for o in reader.state() {
            let key = format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
            m.insert(key, json!(o.resource_version().unwrap_or_default()));
        }
        Value::Object(m)
    })
}

async fn reflect<K, S>(stream: S, reader: Store<K>, stats: Arc<Mutex<Stats>>, variant: &str)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut synced = false;
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::InitDone) if !synced => {
                synced = true;
                println!("{}", json!({"synced": reader.len(), "t": now(), "variant": variant}));
            }
            Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::Delete(obj)) => {
                stats.lock().unwrap().observe(obj.annotations());
            }
            _ => {}
        }
    }
}

async fn run<K>(client: Client, stats: Arc<Mutex<Stats>>, dump: Dumper) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let ns = arg("--namespace", "default");
    let mode = arg("--mode", "watch");
    let variant = arg("--variant", "full");
    let api: Api<K> = Api::namespaced(client.clone(), &ns);
    if mode == "controller" {
        let concurrency: u16 = arg("--concurrency", "1").parse()?;
        let pause = Duration::from_secs_f64(arg("--reconcile-ms", "0").parse::<f64>()? / 1000.0);
        let ctrl = Controller::new(api, watcher::Config::default())
            .with_config(controller::Config::default().concurrency(concurrency));
        let store = ctrl.store();
        *dump.lock().unwrap() = Some(dumper(store.clone()));
        let ready = async move {
            store.wait_until_ready().await.ok();
            println!("{}", json!({"synced": store.len(), "t": now()}));
        };
        let run = ctrl.run(
            move |obj: Arc<K>, ctx: Arc<Mutex<Stats>>| async move {
                ctx.lock().unwrap().observe(obj.annotations());
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_obj, _err, _ctx| Action::requeue(Duration::from_secs(1)),
            stats,
        )
        .for_each(|r| {
            if let Err(e) = r {
                eprintln!("controller error: {e:?}");
            }
            futures::future::ready(())
        });
        futures::future::join(ready, run).await;
    } else if variant == "metadata" {
        let (reader, writer) = reflector::store::<PartialObjectMeta<K>>();
        *dump.lock().unwrap() = Some(dumper(reader.clone()));
        // kube 5: an Api over PartialObjectMeta<K> makes metadata-only requests.
        let meta_api: Api<PartialObjectMeta<K>> = Api::namespaced(client, &ns);
        let stream = reflector(writer, watcher(meta_api, watcher::Config::default())).default_backoff();
        reflect(stream, reader, stats, &variant).await;
    } else if variant == "strip" {
        let (reader, writer) = reflector::store::<K>();
        *dump.lock().unwrap() = Some(dumper(reader.clone()));
        let events = watcher(api, watcher::Config::default()).modify(|o: &mut K| o.managed_fields_mut().clear());
        let stream = reflector(writer, events).default_backoff();
        reflect(stream, reader, stats, &variant).await;
    } else {
        let (reader, writer) = reflector::store::<K>();
        *dump.lock().unwrap() = Some(dumper(reader.clone()));
        let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
        reflect(stream, reader, stats, &variant).await;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(arg("--kubeconfig", "kubeconfig"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    let resource = arg("--resource", "configmaps");
    let stats = Arc::new(Mutex::new(Stats::default()));
    let dump: Dumper = Arc::new(Mutex::new(None));

    let reporter = stats.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let line = reporter.lock().unwrap().report(false);
            println!("{line}");
        }
    });
    let finisher = stats.clone();
    let dumped = dump.clone();
    let work = async move {
        if resource == "pods" {
            run::<Pod>(client, stats, dump).await
        } else {
            run::<ConfigMap>(client, stats, dump).await
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = work => r?,
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    if let Ok(path) = env::var("BENCH_DUMP") {
        if let Some(f) = dumped.lock().unwrap().as_ref() {
            std::fs::write(format!("{path}.tmp"), f().to_string())?;
            std::fs::rename(format!("{path}.tmp"), &path)?;
        }
    }
    let line = finisher.lock().unwrap().report(true);
    println!("{line}");
    Ok(())
}
