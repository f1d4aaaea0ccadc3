//! kube-rs peer for kube-runtime's benchmarks (see benches/peers/README.md for the protocol).
use std::{env, sync::Arc, time::{Duration, SystemTime, UNIX_EPOCH}};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{controller::Action, reflector, watcher, Controller, WatchStreamExt},
    Api, Client, Config, Resource, ResourceExt,
};
use serde_json::json;
use tokio::sync::Mutex;

const EMITTED: &str = "bench.kube-runtime.io/emitted";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[derive(Default)]
struct Stats {
    events: u64,
    lags: Vec<f64>,
}

impl Stats {
    fn observe(&mut self, annotations: &std::collections::BTreeMap<String, String>) {
        self.events += 1;
        if let Some(t) = annotations.get(EMITTED).and_then(|v| v.parse::<f64>().ok()) {
            self.lags.push(now() - t);
        }
    }
    fn report(&mut self, final_: bool) -> serde_json::Value {
        let mut lags = self.lags.clone();
        lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |p: f64| if lags.is_empty() { None } else { Some(lags[((lags.len() - 1) as f64 * p) as usize]) };
        json!({"events": self.events, "t": now(), "final": final_, "lag_p50": pct(0.5), "lag_p99": pct(0.99), "lagged": lags.len()})
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

async fn run<K>(client: Client, ns: String, mode: String, stats: Arc<Mutex<Stats>>) -> anyhow::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let api: Api<K> = Api::namespaced(client, &ns);
    if mode == "controller" {
        let ctrl = Controller::new(api, watcher::Config::default());
        let store = ctrl.store();
        tokio::spawn(async move {
            store.wait_until_ready().await.ok();
            println!("{}", json!({"synced": store.len(), "t": now()}));
        });
        ctrl.run(
            move |obj: Arc<K>, ctx: Arc<Mutex<Stats>>| async move {
                ctx.lock().await.observe(obj.annotations());
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_obj, _err, _ctx| Action::requeue(Duration::from_secs(1)),
            stats,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
    } else {
        let (reader, writer) = reflector::store::<K>();
        let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
        let mut synced = false;
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) if !synced => {
                    synced = true;
                    println!("{}", json!({"synced": reader.len(), "t": now()}));
                }
                Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::Delete(obj)) => {
                    stats.lock().await.observe(obj.annotations());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(arg("--kubeconfig", "kubeconfig"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    let ns = arg("--namespace", "default");
    let mode = arg("--mode", "watch");
    let resource = arg("--resource", "configmaps");
    let stats = Arc::new(Mutex::new(Stats::default()));

    let reporter = stats.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!("{}", reporter.lock().await.report(false));
        }
    });
    let finisher = stats.clone();
    let work = async move {
        if resource == "pods" {
            run::<Pod>(client, ns, mode, stats).await
        } else {
            run::<ConfigMap>(client, ns, mode, stats).await
        }
    };
    tokio::select! {
        r = work => r?,
        _ = tokio::signal::ctrl_c() => {},
        _ = async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap().recv().await } => {},
    }
    println!("{}", finisher.lock().await.report(true));
    Ok(())
}
