//! The Docker engine behind [`Runtime`], through bollard: containers,
//! images, the cluster's bridge network, exec, logs, events and usage read
//! from the containers' cgroups.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig, HostConfigLogConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
    ListImagesOptions, LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tracing::debug;

use super::{
    ContainerConfig, ContainerEvent, ContainerInfo, ContainerState, Error, ExecResult, ExecSession, Image, LogOptions, Network, Output,
    Result, Runtime, RuntimeVersion, Usage, labels,
};

/// The Docker engine on the local socket (`DOCKER_HOST` if set).
pub struct DockerRuntime {
    docker: Docker,
    /// The last inspection of each container, by id, with the state the
    /// engine's list showed then: a pod's sync lists its containers often,
    /// and a container is inspected again only when its state changed.
    inspected: Mutex<HashMap<String, (String, ContainerInfo)>>,
}

impl DockerRuntime {
    /// Connects to the engine and agrees on an API version it speaks.
    pub async fn connect() -> Result<DockerRuntime> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| Error::Unavailable(e.to_string()))?;
        let docker = docker.negotiate_version().await.map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(DockerRuntime { docker, inspected: Mutex::new(HashMap::new()) })
    }

    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.inspected.lock() {
            m.remove(id);
        }
    }
}

fn err(e: DockerError) -> Error {
    match e {
        DockerError::DockerResponseServerError { status_code: 404, message } => Error::NotFound(message),
        DockerError::DockerResponseServerError { message, .. } => Error::Engine(message),
        DockerError::RequestTimeoutError => Error::Timeout(Duration::from_secs(120)),
        DockerError::HyperResponseError { .. } | DockerError::IOError { .. } | DockerError::SocketNotFoundError(_) => {
            Error::Unavailable(e.to_string())
        }
        other => Error::Engine(other.to_string()),
    }
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s?;
    // Docker reports "0001-01-01T00:00:00Z" for "never".
    if s.starts_with("0001-") {
        return None;
    }
    berth_api::time::parse_rfc3339(s)
}

fn label_filters(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f = HashMap::new();
    f.insert("label".to_string(), pairs.iter().map(|(k, v)| format!("{k}={v}")).collect());
    f
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let v = self.docker.version().await.map_err(err)?;
        Ok(RuntimeVersion { version: format!("docker://{}", v.version.unwrap_or_default()) })
    }

    fn needs_pod_cidr(&self) -> bool {
        true
    }

    async fn ensure_network(&self, name: &str, subnet: &str, gateway: &str) -> Result<String> {
        for _ in 0..3 {
            match self.docker.inspect_network(name, None::<InspectNetworkOptions>).await {
                Ok(n) => {
                    let subnets: Vec<String> =
                        n.ipam.and_then(|i| i.config).unwrap_or_default().into_iter().filter_map(|c| c.subnet).collect();
                    if !subnets.iter().any(|s| s == subnet) {
                        return Err(Error::Engine(format!(
                            "network {name} exists with subnets {subnets:?}, not {subnet}: remove it or pick another --cluster-network"
                        )));
                    }
                    return Ok(n.id.unwrap_or_default());
                }
                Err(e) => {
                    let e = err(e);
                    if !matches!(e, Error::NotFound(_)) {
                        return Err(e);
                    }
                }
            }
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(vec![IpamConfig { subnet: Some(subnet.into()), gateway: Some(gateway.into()), ..Default::default() }]),
                    options: None,
                }),
                labels: Some([("berth.io/cluster-network".to_string(), "true".to_string())].into()),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(r) => return Ok(r.id),
                // Another kubelet on this host created it first: inspect again.
                Err(e) => debug!(network = name, cause = %e, "creating the network failed, looking again"),
            }
        }
        Err(Error::Engine(format!("cannot create or find the network {name}")))
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let images = self.docker.list_images(None::<ListImagesOptions>).await.map_err(err)?;
        Ok(images
            .into_iter()
            .map(|i| Image { id: i.id, names: i.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(), size_bytes: i.size })
            .collect())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) => match err(e) {
                Error::NotFound(_) => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn pull_image(&self, image: &str) -> Result<String> {
        let options = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(err)?;
            if let Some(e) = step.error_detail.and_then(|d| d.message) {
                return Err(Error::Engine(e));
            }
        }
        self.image_id(image).await?.ok_or_else(|| Error::NotFound(format!("image {image} not found after pulling it")))
    }

    async fn list_containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        let options = ListContainersOptions { all: true, filters: Some(label_filters(labels)), ..Default::default() };
        let summaries = self.docker.list_containers(Some(options)).await.map_err(err)?;
        let mut out = Vec::with_capacity(summaries.len());
        let ids: Vec<String> = summaries.iter().filter_map(|s| s.id.clone()).collect();
        for s in summaries {
            let Some(id) = s.id else { continue };
            let listed = s.state.map(|st| st.to_string()).unwrap_or_default();
            let cached = self.inspected.lock().ok().and_then(|m| m.get(&id).filter(|(st, _)| *st == listed).map(|(_, i)| i.clone()));
            if let Some(info) = cached {
                out.push(info);
                continue;
            }
            // Removed between the list and the inspection: skip it.
            if let Some(info) = self.inspect_container(&id).await?
                && let Ok(mut m) = self.inspected.lock()
            {
                m.insert(id, (listed, info.clone()));
                out.push(info);
            }
        }
        // Forget containers that are gone (only when this list saw all of them).
        if labels.len() == 1
            && let Ok(mut m) = self.inspected.lock()
        {
            m.retain(|id, (_, info)| ids.contains(id) || info.labels.get(labels[0].0) != Some(&labels[0].1.to_string()));
        }
        Ok(out)
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let c = match self.docker.inspect_container(id, None::<InspectContainerOptions>).await {
            Ok(c) => c,
            Err(e) => {
                return match err(e) {
                    Error::NotFound(_) => Ok(None),
                    e => Err(e),
                };
            }
        };
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let st = match status.as_str() {
            "created" => ContainerState::Created,
            "running" | "paused" | "restarting" => ContainerState::Running,
            "exited" | "dead" => ContainerState::Exited,
            _ => ContainerState::Unknown,
        };
        let info = ContainerInfo {
            id: c.id.unwrap_or_else(|| id.to_string()),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
            labels: config.labels.unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            state: st,
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.unwrap_or_default(),
            created: parse_time(c.created.as_deref()),
            started_at: parse_time(state.started_at.as_deref()),
            finished_at: parse_time(state.finished_at.as_deref()),
        };
        Ok(Some(info))
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        let mut host = HostConfig {
            binds: Some(config.binds.clone()).filter(|b| !b.is_empty()),
            memory: config.memory_limit_bytes,
            cpu_quota: config.cpu_quota,
            cpu_period: config.cpu_period,
            cpu_shares: config.cpu_shares,
            privileged: Some(config.privileged),
            cap_add: Some(config.cap_add.clone()).filter(|c| !c.is_empty()),
            cap_drop: Some(config.cap_drop.clone()).filter(|c| !c.is_empty()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some([("max-size".to_string(), "10m".to_string()), ("max-file".to_string(), "2".to_string())].into()),
            }),
            ..Default::default()
        };
        let mut body = ContainerCreateBody {
            image: Some(config.image.clone()),
            labels: Some(config.labels.clone().into_iter().collect()),
            entrypoint: config.entrypoint.clone(),
            cmd: config.cmd.clone(),
            env: Some(config.env.clone()),
            working_dir: Some(config.working_dir.clone()).filter(|w| !w.is_empty()),
            user: config.user.clone(),
            open_stdin: Some(config.stdin),
            stdin_once: Some(config.stdin_once),
            tty: Some(config.tty),
            ..Default::default()
        };
        match &config.network {
            Network::Bridge { network, ip, hostname, port_bindings } => {
                host.network_mode = Some(network.clone());
                body.hostname = Some(hostname.clone());
                let mut ports: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
                for (container_port, protocol, host_port, host_ip) in port_bindings {
                    let key = format!("{container_port}/{}", protocol.to_ascii_lowercase());
                    ports.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(PortBinding {
                        host_ip: Some(host_ip.clone()).filter(|h| !h.is_empty()),
                        host_port: Some(host_port.to_string()),
                    });
                }
                if !ports.is_empty() {
                    body.exposed_ports = Some(ports.keys().cloned().collect());
                    host.port_bindings = Some(ports);
                }
                let endpoint = EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig { ipv4_address: Some(ip.clone()), ..Default::default() }),
                    ..Default::default()
                };
                body.networking_config = Some(NetworkingConfig { endpoints_config: Some([(network.clone(), endpoint)].into()) });
            }
            Network::Container(id) => host.network_mode = Some(format!("container:{id}")),
        }
        body.host_config = Some(host);
        let options = CreateContainerOptions { name: Some(config.name.clone()), ..Default::default() };
        let created = self.docker.create_container(Some(options), body).await.map_err(err)?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.forget(id);
        self.docker.start_container(id, None).await.map_err(err)
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions { t: Some(secs), signal: None };
        // The engine answers once the container stopped: wait longer than the grace period.
        let docker = self.docker.clone().with_timeout(grace + Duration::from_secs(60));
        let r = docker.stop_container(id, Some(options)).await;
        self.forget(id);
        match r {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        let r = self.docker.remove_container(id, Some(options)).await;
        self.forget(id);
        match r.map_err(err) {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        let run = async {
            let exec = self
                .docker
                .create_exec(
                    id,
                    ExecConfig { cmd: Some(cmd.to_vec()), attach_stdout: Some(true), attach_stderr: Some(true), ..Default::default() },
                )
                .await
                .map_err(err)?;
            let mut output = Vec::new();
            if let StartExecResults::Attached { output: mut stream, .. } =
                self.docker.start_exec(&exec.id, None::<StartExecOptions>).await.map_err(err)?
            {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(err)?;
                    if output.len() < 64 * 1024 {
                        output.extend_from_slice(chunk.as_ref());
                    }
                }
            }
            let inspect = self.docker.inspect_exec(&exec.id).await.map_err(err)?;
            Ok(ExecResult { exit_code: inspect.exit_code.unwrap_or(-1), output })
        };
        tokio::time::timeout(timeout, run).await.map_err(|_| Error::Timeout(timeout))?
    }

    async fn exec_interactive(&self, id: &str, cmd: &[String], stdin: bool, tty: bool) -> Result<ExecSession> {
        let exec = self
            .docker
            .create_exec(
                id,
                ExecConfig {
                    cmd: Some(cmd.to_vec()),
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty),
                    ..Default::default()
                },
            )
            .await
            .map_err(err)?;
        let options = StartExecOptions { detach: false, tty, output_capacity: None };
        match self.docker.start_exec(&exec.id, Some(options)).await.map_err(err)? {
            StartExecResults::Attached { output, input } => {
                Ok(ExecSession { id: exec.id, output: output.map_ok(to_output).map_err(err).boxed(), input })
            }
            StartExecResults::Detached => Err(Error::Engine("the engine detached the exec".into())),
        }
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        let inspect = self.docker.inspect_exec(exec_id).await.map_err(err)?;
        if inspect.running.unwrap_or(false) { Ok(None) } else { Ok(inspect.exit_code) }
    }

    fn logs(&self, id: &str, options: &LogOptions) -> BoxStream<'static, Result<Output>> {
        let tail = options.tail_lines.map(|n| n.max(0).to_string()).unwrap_or_else(|| "all".into());
        let opts =
            LogsOptions { follow: options.follow, stdout: true, stderr: true, timestamps: options.timestamps, tail, ..Default::default() };
        let docker =
            if options.follow { self.docker.clone().with_timeout(Duration::from_secs(u32::MAX as u64)) } else { self.docker.clone() };
        docker.logs(id, Some(opts)).map_ok(to_output).map_err(err).boxed()
    }

    async fn usage(&self, id: &str) -> Result<Option<Usage>> {
        if let Some(u) = cgroup_usage(id).await {
            return Ok(Some(u));
        }
        let options = StatsOptions { stream: false, one_shot: true };
        let mut stats = self.docker.stats(id, Some(options));
        match stats.next().await {
            Some(Ok(s)) => {
                let cpu = s.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage).unwrap_or(0);
                let mem = s.memory_stats.unwrap_or_default();
                let inactive =
                    mem.stats.as_ref().and_then(|m| m.get("inactive_file").or(m.get("total_inactive_file")).copied()).unwrap_or(0);
                let usage = mem.usage.unwrap_or(0);
                Ok(Some(Usage { cpu_usage_ns_total: cpu, memory_working_set_bytes: usage.saturating_sub(inactive) }))
            }
            Some(Err(e)) => match err(e) {
                Error::NotFound(_) => Ok(None),
                e => Err(e),
            },
            None => Ok(None),
        }
    }

    async fn events(&self, node: &str) -> Result<BoxStream<'static, ContainerEvent>> {
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        filters.insert("label".to_string(), vec![format!("{}={node}", labels::NODE)]);
        let options = EventsOptions { filters: Some(filters), ..Default::default() };
        let docker = self.docker.clone().with_timeout(Duration::from_secs(u32::MAX as u64));
        let stream = docker.events(Some(options)).take_while(|e| futures::future::ready(e.is_ok())).filter_map(|e| async move {
            let e = e.ok()?;
            let actor = e.actor?;
            let attributes = actor.attributes.unwrap_or_default();
            Some(ContainerEvent {
                container_id: actor.id.unwrap_or_default(),
                pod_uid: attributes.get(labels::POD_UID).cloned().unwrap_or_default(),
                action: e.action.unwrap_or_default(),
            })
        });
        Ok(stream.boxed())
    }
}

fn to_output(o: LogOutput) -> Output {
    match o {
        LogOutput::StdErr { message } => Output::Stderr(message),
        LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdIn { message } => Output::Stdout(message),
    }
}

/// CPU and memory of a container read from its cgroup (v1 with the
/// cgroupfs or systemd driver, or v2), which costs far less than the
/// engine's stats call.
async fn cgroup_usage(id: &str) -> Option<Usage> {
    let v1 = [format!("docker/{id}"), format!("system.slice/docker-{id}.scope")];
    for rel in &v1 {
        let cpu = format!("/sys/fs/cgroup/cpuacct/{rel}/cpuacct.usage");
        if let Ok(cpu) = tokio::fs::read_to_string(&cpu).await {
            let mem_dir = format!("/sys/fs/cgroup/memory/{rel}");
            let usage = read_u64(&format!("{mem_dir}/memory.usage_in_bytes")).await.unwrap_or(0);
            let stat = tokio::fs::read_to_string(format!("{mem_dir}/memory.stat")).await.unwrap_or_default();
            let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
            return Some(Usage {
                cpu_usage_ns_total: cpu.trim().parse().unwrap_or(0),
                memory_working_set_bytes: usage.saturating_sub(inactive),
            });
        }
    }
    for rel in &v1 {
        let dir = format!("/sys/fs/cgroup/{rel}");
        if let Ok(cpu) = tokio::fs::read_to_string(format!("{dir}/cpu.stat")).await {
            let usage = read_u64(&format!("{dir}/memory.current")).await.unwrap_or(0);
            let stat = tokio::fs::read_to_string(format!("{dir}/memory.stat")).await.unwrap_or_default();
            let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
            return Some(Usage {
                cpu_usage_ns_total: stat_field(&cpu, "usage_usec").unwrap_or(0) * 1000,
                memory_working_set_bytes: usage.saturating_sub(inactive),
            });
        }
    }
    None
}

async fn read_u64(path: &str) -> Option<u64> {
    tokio::fs::read_to_string(path).await.ok()?.trim().parse().ok()
}

fn stat_field(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_fields_of_cgroup_stat_files() {
        let stat = "cache 10\ntotal_inactive_file 4096\nusage_usec 12\n";
        assert_eq!(stat_field(stat, "total_inactive_file"), Some(4096));
        assert_eq!(stat_field(stat, "usage_usec"), Some(12));
        assert_eq!(stat_field(stat, "missing"), None);
    }

    #[test]
    fn should_treat_dockers_zero_time_as_never() {
        assert_eq!(parse_time(Some("0001-01-01T00:00:00Z")), None);
        assert!(parse_time(Some("2024-05-01T10:00:00.123456789Z")).is_some());
    }
}
