//! ECS task definitions on Fargate: the Fargate sizes, validation, the normalised comparison with
//! the family's latest ACTIVE revision, and registering a new revision when it differs.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::types::{
    Compatibility, CpuArchitecture, EfsTransitEncryption, EfsVolumeConfiguration, EphemeralStorage, NetworkMode,
    OsFamily, RuntimePlatform, TaskDefinitionField, Volume,
};
use futures_util::future::LocalBoxFuture;

use super::{ContainerSpec, built, container_definition, container_diffs, container_from, opt, tag_value, tags_for};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// An EFS volume configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Efs {
    /// `fs-...`.
    pub file_system_id: String,
    /// Directory of the file system to mount (default `/`).
    pub root_directory: String,
    /// Encrypt NFS traffic.
    pub transit_encryption: bool,
}

impl fmt::Display for Efs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "efs {}:{}", self.file_system_id, self.root_directory)?;
        if self.transit_encryption {
            write!(f, " (transit encryption)")?;
        }
        Ok(())
    }
}

/// A task volume: task storage (gone with the task) or EFS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Volume name, referenced by mounts.
    pub name: String,
    /// EFS configuration, or `None` for task storage.
    pub efs: Option<Efs>,
}

impl VolumeSpec {
    fn describe(&self) -> String {
        self.efs.as_ref().map(ToString::to_string).unwrap_or_else(|| "task storage".into())
    }
}

/// What a script asks of a Fargate task definition (normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionSpec {
    /// The family; each change registers a new revision of it.
    pub family: String,
    /// CPU units (256 = 0.25 vCPU).
    pub cpu: i32,
    /// Memory in MiB.
    pub memory: i32,
    /// Task execution role ARN (pulls images, writes logs), or [`UNKNOWN`].
    pub execution_role: Option<String>,
    /// Task role ARN (what the app may call), or [`UNKNOWN`].
    pub task_role: Option<String>,
    /// The containers, in script order.
    pub containers: Vec<ContainerSpec>,
    /// The volumes (sorted by name).
    pub volumes: Vec<VolumeSpec>,
    /// The CPU architecture (runtimePlatform, Linux): `x86_64` unless the script says `arm64`.
    pub arch: Arch,
    /// Ephemeral storage in GiB ([`DEFAULT_EPHEMERAL_STORAGE`] to 200).
    pub ephemeral_storage: i32,
}

/// The ephemeral storage (GiB) every Fargate task gets without asking (ECS docs, "Fargate task
/// ephemeral storage": 20 GiB by default, up to 200 GiB).
pub const DEFAULT_EPHEMERAL_STORAGE: i32 = 20;

/// The largest ephemeral storage (GiB) a Fargate task definition may ask for.
pub const MAX_EPHEMERAL_STORAGE: i32 = 200;

/// The CPU architecture a Fargate task runs on (runtimePlatform.cpuArchitecture, Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Arch {
    /// Intel/AMD, what a task definition without runtimePlatform runs on.
    #[default]
    X86_64,
    /// Graviton.
    Arm64,
}

impl Arch {
    /// The script's spelling: `x86_64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The script's spelling parsed (`x86_64`/`amd64` or `arm64`, any case).
    pub fn parse(value: &str) -> Option<Arch> {
        match value.to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered task definition revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    /// Revision ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Family.
    pub family: String,
    /// Revision number, when known.
    pub revision: Option<i32>,
    /// `awsvpc` for Fargate.
    pub network_mode: String,
    /// Whether it requires FARGATE compatibility.
    pub fargate: bool,
    /// Its content, normalised like a spec.
    pub spec: TaskDefinitionSpec,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

impl TaskDefinition {
    /// `family:revision`, or `family:(known after apply)`.
    pub fn label(&self) -> String {
        match self.revision {
            Some(r) => format!("{}:{r}", self.family),
            None => format!("{}:{UNKNOWN}", self.family),
        }
    }
}

/// The memory sizes (MiB) Fargate accepts for `cpu` units, or `None` for an unknown cpu value.
pub fn fargate_memories(cpu: i32) -> Option<Vec<i32>> {
    let (from, to, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some((from..=to).step_by(step as usize).collect())
}

/// Checks a Fargate cpu/memory pair against the combinations AWS documents.
pub fn validate_fargate_size(cpu: i32, memory: i32) -> Result<()> {
    let Some(memories) = fargate_memories(cpu) else {
        return Err(Error::invalid(
            "task_definition.cpu",
            cpu,
            "a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384 (1024 = 1 vCPU)",
        ));
    };
    if memories.contains(&memory) {
        return Ok(());
    }
    let allowed = if memories.len() <= 4 {
        memories.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    } else {
        format!("{} to {} in steps of {}", memories[0], memories[memories.len() - 1], memories[1] - memories[0])
    };
    Err(Error::invalid(
        "task_definition.memory",
        memory,
        format!("with cpu {cpu}, Fargate allows memory {allowed} (MiB)"),
    ))
}

/// Checks what AWS would reject in a task definition: the Fargate size, unique container and
/// volume names, mounts of declared volumes, and at least one essential container.
pub fn validate_task_definition(spec: &TaskDefinitionSpec) -> Result<()> {
    validate_fargate_size(spec.cpu, spec.memory)?;
    if !(DEFAULT_EPHEMERAL_STORAGE..=MAX_EPHEMERAL_STORAGE).contains(&spec.ephemeral_storage) {
        return Err(Error::invalid(
            "task_definition.ephemeral_storage",
            spec.ephemeral_storage,
            format!(
                "GiB from {} to {MAX_EPHEMERAL_STORAGE} (Fargate gives {DEFAULT_EPHEMERAL_STORAGE} GiB without asking)",
                DEFAULT_EPHEMERAL_STORAGE + 1
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            return Err(Error::invalid(
                format!("task_definition.containers[{i}].name"),
                format!("{:?}", c.name),
                "a name no other container of the task uses",
            ));
        }
    }
    let mut volumes = BTreeSet::new();
    for v in &spec.volumes {
        if !volumes.insert(v.name.as_str()) {
            return Err(Error::invalid("task_definition.volumes", format!("{:?}", v.name), "each volume name once"));
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, m) in c.mounts.iter().enumerate() {
            if !volumes.contains(m.volume.as_str()) {
                let declared = if volumes.is_empty() {
                    "none are declared; add it to `volumes: [#{ name: ... }]`".to_string()
                } else {
                    format!("declared: {}", volumes.iter().copied().collect::<Vec<_>>().join(", "))
                };
                return Err(Error::invalid(
                    format!("task_definition.containers[{i}].mounts[{j}].volume"),
                    format!("{:?}", m.volume),
                    format!("container {} can only mount a volume of the task; {declared}", c.name),
                ));
            }
        }
    }
    if spec.containers.is_empty() {
        return Err(Error::MissingKey {
            key: "containers".into(),
            context: "task_definition()".into(),
            what: "at least one container #{ name, image }".into(),
        });
    }
    if !spec.containers.iter().any(|c| c.essential) {
        return Err(Error::invalid(
            "task_definition.containers",
            "no essential container",
            "at least one container with essential: true",
        ));
    }
    Ok(())
}

fn task_definition_diffs(current: &TaskDefinition, wanted: &TaskDefinitionSpec) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let have = &current.spec;
    if current.network_mode != "awsvpc" {
        diffs.push(FieldDiff::changed("network_mode", &current.network_mode, "awsvpc"));
    }
    if !current.fargate {
        diffs.push(FieldDiff::changed("requires_compatibilities", "not FARGATE", "FARGATE"));
    }
    if have.cpu != wanted.cpu {
        diffs.push(FieldDiff::changed("cpu", have.cpu, wanted.cpu));
    }
    if have.memory != wanted.memory {
        diffs.push(FieldDiff::changed("memory", have.memory, wanted.memory));
    }
    if have.arch != wanted.arch {
        diffs.push(FieldDiff::changed("arch", have.arch, wanted.arch));
    }
    if have.ephemeral_storage != wanted.ephemeral_storage {
        diffs.push(FieldDiff::changed(
            "ephemeral_storage",
            format!("{} GiB", have.ephemeral_storage),
            format!("{} GiB", wanted.ephemeral_storage),
        ));
    }
    if have.execution_role != wanted.execution_role {
        diffs.push(FieldDiff::changed("execution_role", opt(&have.execution_role), opt(&wanted.execution_role)));
    }
    if have.task_role != wanted.task_role {
        diffs.push(FieldDiff::changed("task_role", opt(&have.task_role), opt(&wanted.task_role)));
    }
    for c in &wanted.containers {
        match have.containers.iter().find(|h| h.name == c.name) {
            None => diffs.push(FieldDiff::added("containers", format!("{} ({})", c.name, c.image))),
            Some(h) => diffs.extend(container_diffs(h, c)),
        }
    }
    for h in have.containers.iter().filter(|h| !wanted.containers.iter().any(|c| c.name == h.name)) {
        diffs.push(FieldDiff::removed("containers", format!("{} ({})", h.name, h.image)));
    }
    let order = |specs: &[ContainerSpec]| specs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let same_set = wanted.containers.len() == have.containers.len()
        && wanted.containers.iter().all(|c| have.containers.iter().any(|h| h.name == c.name));
    if same_set && order(&have.containers) != order(&wanted.containers) {
        diffs.push(FieldDiff::changed(
            "containers (order)",
            order(&have.containers).join(", "),
            order(&wanted.containers).join(", "),
        ));
    }
    for v in &wanted.volumes {
        let field = format!("volumes[{}]", v.name);
        match have.volumes.iter().find(|h| h.name == v.name) {
            None => diffs.push(FieldDiff::added("volumes", format!("{} ({})", v.name, v.describe()))),
            Some(h) if h.efs != v.efs => diffs.push(FieldDiff::changed(&field, h.describe(), v.describe())),
            Some(_) => {}
        }
    }
    for h in have.volumes.iter().filter(|h| !wanted.volumes.iter().any(|v| v.name == h.name)) {
        diffs.push(FieldDiff::removed("volumes", format!("{} ({})", h.name, h.describe())));
    }
    diffs
}

/// The latest ACTIVE revision of `family`, or `None` when it has none.
pub async fn latest_task_definition(aws: &Aws, family: &str) -> Result<Option<TaskDefinition>> {
    let sent =
        aws.ecs.describe_task_definition().task_definition(family).include(TaskDefinitionField::Tags).send().await;
    match sent {
        Ok(out) => Ok(described(&out)?.filter(|(status, _)| status == "ACTIVE").map(|(_, task)| task)),
        // ECS answers ClientException "Unable to describe task definition." for a family without
        // an ACTIVE revision.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_client_exception()) => Ok(None),
        Err(err) => Err(aws_error("DescribeTaskDefinition", err)),
    }
}

/// A task definition by ARN, `family:revision` or family, with its status.
pub async fn describe_task_definition(aws: &Aws, name: &str) -> Result<Option<(String, TaskDefinition)>> {
    let out = aws
        .ecs
        .describe_task_definition()
        .task_definition(name)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| aws_error("DescribeTaskDefinition", e))?;
    described(&out)
}

/// The task definition of a DescribeTaskDefinition reply, with its status.
fn described(out: &DescribeTaskDefinitionOutput) -> Result<Option<(String, TaskDefinition)>> {
    let stack = tag_value(out.tags(), STACK_TAG);
    out.task_definition()
        .map(|t| {
            let status = t.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "ACTIVE".into());
            Ok((status, task_definition_from("DescribeTaskDefinition", t, stack)?))
        })
        .transpose()
}

fn task_definition_from(
    operation: &str,
    t: &aws_sdk_ecs::types::TaskDefinition,
    stack: Option<String>,
) -> Result<TaskDefinition> {
    let mut volumes: Vec<VolumeSpec> = t
        .volumes()
        .iter()
        .map(|v| VolumeSpec {
            name: v.name().unwrap_or_default().to_string(),
            efs: v.efs_volume_configuration().map(|e| Efs {
                file_system_id: e.file_system_id().to_string(),
                root_directory: e.root_directory().unwrap_or("/").to_string(),
                transit_encryption: e.transit_encryption() == Some(&EfsTransitEncryption::Enabled),
            }),
        })
        .collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    let family = t.family().ok_or_else(|| Error::missing(operation, "taskDefinition.family"))?.to_string();
    Ok(TaskDefinition {
        arn: t
            .task_definition_arn()
            .ok_or_else(|| Error::missing(operation, "taskDefinition.taskDefinitionArn"))?
            .to_string(),
        family: family.clone(),
        revision: Some(t.revision()),
        network_mode: t.network_mode().map(|m| m.as_str().to_string()).unwrap_or_else(|| "bridge".into()),
        fargate: t.requires_compatibilities().contains(&Compatibility::Fargate),
        spec: TaskDefinitionSpec {
            family,
            cpu: t.cpu().and_then(|c| c.parse().ok()).unwrap_or(0),
            memory: t.memory().and_then(|m| m.parse().ok()).unwrap_or(0),
            execution_role: t.execution_role_arn().map(str::to_string),
            task_role: t.task_role_arn().map(str::to_string),
            containers: t.container_definitions().iter().map(container_from).collect::<Result<_>>()?,
            volumes,
            // No runtimePlatform means Linux on x86_64 (ECS API reference, RuntimePlatform).
            arch: match t.runtime_platform().and_then(|p| p.cpu_architecture()) {
                Some(CpuArchitecture::Arm64) => Arch::Arm64,
                _ => Arch::X86_64,
            },
            ephemeral_storage: t.ephemeral_storage().map_or(DEFAULT_EPHEMERAL_STORAGE, |e| e.size_in_gib()),
        },
        stack,
    })
}

fn volume(v: &VolumeSpec) -> Result<Volume> {
    let mut volume = Volume::builder().name(&v.name);
    if let Some(efs) = &v.efs {
        let encryption =
            if efs.transit_encryption { EfsTransitEncryption::Enabled } else { EfsTransitEncryption::Disabled };
        let config = EfsVolumeConfiguration::builder()
            .file_system_id(&efs.file_system_id)
            .root_directory(&efs.root_directory)
            .transit_encryption(encryption)
            .build();
        volume = volume.efs_volume_configuration(built("an EFS volume", config)?);
    }
    Ok(volume.build())
}

/// Registers a revision of the spec's family, tagged with the stack (one RegisterTaskDefinition).
async fn register_task_definition(pass: &Pass, spec: &TaskDefinitionSpec, stack: &str) -> Result<TaskDefinition> {
    let containers = spec.containers.iter().map(container_definition).collect::<Result<Vec<_>>>()?;
    let volumes = spec.volumes.iter().map(volume).collect::<Result<Vec<_>>>()?;
    // Sent only when they differ from what ECS assumes without them, so a task definition that
    // asks for neither registers as before.
    let platform = (spec.arch == Arch::Arm64).then(|| {
        RuntimePlatform::builder()
            .cpu_architecture(CpuArchitecture::Arm64)
            .operating_system_family(OsFamily::Linux)
            .build()
    });
    let storage = (spec.ephemeral_storage != DEFAULT_EPHEMERAL_STORAGE)
        .then(|| EphemeralStorage::builder().size_in_gib(spec.ephemeral_storage).build());
    let out = pass
        .send(async |aws| {
            aws.ecs
                .register_task_definition()
                .family(&spec.family)
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(Compatibility::Fargate)
                .cpu(spec.cpu.to_string())
                .memory(spec.memory.to_string())
                .set_execution_role_arn(spec.execution_role.clone())
                .set_task_role_arn(spec.task_role.clone())
                .set_container_definitions(Some(containers))
                .set_volumes(Some(volumes))
                .set_runtime_platform(platform.clone())
                .set_ephemeral_storage(storage.clone())
                .set_tags(Some(tags_for(stack, &spec.family)))
                .send()
                .await
                .map_err(|e| aws_error("RegisterTaskDefinition", e))
        })
        .await?;
    let registered = out.task_definition().ok_or_else(|| Error::missing("RegisterTaskDefinition", "taskDefinition"))?;
    let mut found = task_definition_from("RegisterTaskDefinition", registered, Some(stack.to_string()))?;
    // What we registered is what we asked for; keep the spec as the script stated it.
    found.spec = spec.clone();
    Ok(found)
}

/// The family's latest ACTIVE revision, from the run's cache or read once (nothing in check mode).
fn lookup_latest(pass: &Pass, family: &str) -> Result<Option<TaskDefinition>> {
    if let Some(found) = pass.snapshot()?.borrow().ecs.task_definitions.get(family) {
        return Ok(found.clone());
    }
    let Some(found) = pass.read(async |aws| latest_task_definition(aws, family).await) else { return Ok(None) };
    let found = found?;
    pass.remember_read(|s| {
        s.ecs.task_definitions.insert(family.to_string(), found.clone());
    })?;
    Ok(found)
}

/// A task definition converges by family: its latest ACTIVE revision is compared with the script,
/// and a change registers a new revision (revisions themselves never change).
impl Resource for TaskDefinition {
    type Reads = Snapshot;
    type Spec = TaskDefinitionSpec;
    type Update = ();
    const KIND: &'static str = "task_definition";

    fn name(spec: &TaskDefinitionSpec) -> String {
        spec.family.clone()
    }

    fn noun() -> String {
        "task definition family".into()
    }

    fn locator(live: &TaskDefinition) -> String {
        live.label()
    }

    fn validate(_pass: &Pass, spec: &TaskDefinitionSpec) -> Result<()> {
        validate_task_definition(spec)
    }

    fn find(pass: &Pass, spec: &TaskDefinitionSpec) -> Result<Option<TaskDefinition>> {
        lookup_latest(pass, &spec.family)
    }

    fn stack_of(live: &TaskDefinition) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &TaskDefinitionSpec, stack: &str) -> TaskDefinition {
        TaskDefinition {
            arn: UNKNOWN.into(),
            family: spec.family.clone(),
            revision: None,
            network_mode: "awsvpc".into(),
            fargate: true,
            spec: spec.clone(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &TaskDefinitionSpec, stack: &str) -> Result<Created<TaskDefinition>> {
        pass.block(register_task_definition(pass, spec, stack)).map(Created::New)
    }

    /// The first revision of a family goes out beside other creates once its roles exist (a spec
    /// naming a role still to be created waits for the next wave); the statement then finds it as
    /// the family's latest revision in the snapshot ([`lookup_latest`]), with no read.
    fn create_beside(
        pass: &Pass,
        spec: TaskDefinitionSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<TaskDefinition>>>> {
        Some(Box::pin(async move { register_task_definition(pass, &spec, &stack).await.map(Created::New) }))
    }

    fn diff(live: &TaskDefinition, spec: &TaskDefinitionSpec) -> Drift<()> {
        Drift::of(task_definition_diffs(live, spec))
    }

    fn update(pass: &Pass, _live: &TaskDefinition, spec: &TaskDefinitionSpec, _: &()) -> Result<TaskDefinition> {
        // A new revision of a family this stack owns (the engine checked the latest one's tag).
        pass.block(register_task_definition(pass, spec, &pass.stack()?))
    }

    fn updated(live: &TaskDefinition, spec: &TaskDefinitionSpec) -> TaskDefinition {
        Self::planned(spec, live.stack.as_deref().unwrap_or_default())
    }

    fn remember(snapshot: &mut Snapshot, live: &TaskDefinition) {
        snapshot.ecs.task_definitions.insert(live.family.clone(), Some(live.clone()));
    }

    fn summary(live: &TaskDefinition) -> String {
        live.label()
    }

    fn update_summary(before: &TaskDefinition, after: &TaskDefinition) -> String {
        match after.revision {
            Some(_) => format!("{} -> {}", before.label(), after.label()),
            None => format!("{} -> new revision", before.label()),
        }
    }
}

/// A task's containers by name with their ports.
pub type ContainerPorts = Vec<(String, Vec<i32>)>;

/// The containers (name, ports) of a task definition named by ARN (read once per run); `None` in
/// check mode.
pub fn task_definition_containers(pass: &Pass, arn: &str) -> Result<Option<ContainerPorts>> {
    let snapshot = pass.snapshot()?;
    if let Some(containers) = snapshot.borrow().ecs.task_containers.get(arn) {
        return Ok(Some(containers.clone()));
    }
    let Some(found) = pass.read(async |aws| describe_task_definition(aws, arn).await) else {
        return Ok(None);
    };
    let (_, task) = found?.ok_or_else(|| Error::conflict(format!("task definition {arn} not found"), None))?;
    let containers: ContainerPorts = task.spec.containers.into_iter().map(|c| (c.name, c.ports)).collect();
    snapshot.borrow_mut().ecs.task_containers.insert(arn.to_string(), containers.clone());
    Ok(Some(containers))
}

/// The region's task definition families that have an ACTIVE revision.
pub async fn active_families(aws: &Aws) -> Result<Vec<String>> {
    let mut pages = aws
        .ecs
        .list_task_definition_families()
        .status(aws_sdk_ecs::types::TaskDefinitionFamilyStatus::Active)
        .into_paginator()
        .items()
        .send();
    let mut families = Vec::new();
    while let Some(family) = pages.next().await {
        families.push(family.map_err(|e| aws_error("ListTaskDefinitionFamilies", e))?);
    }
    Ok(families)
}

/// The ACTIVE revisions of `family`, as `family:revision`.
pub async fn active_revisions(aws: &Aws, family: &str) -> Result<Vec<String>> {
    let mut pages = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send();
    let mut revisions = Vec::new();
    while let Some(arn) = pages.next().await {
        let arn = arn.map_err(|e| aws_error("ListTaskDefinitions", e))?;
        // `familyPrefix` names the whole family, but keep only exact matches to be sure.
        let revision = arn.rsplit_once("task-definition/").map_or(arn.as_str(), |(_, r)| r);
        if revision.rsplit_once(':').is_some_and(|(f, _)| f == family) {
            revisions.push(revision.to_string());
        }
    }
    Ok(revisions)
}

/// Deregisters one task definition revision (`family:revision`).
pub async fn deregister_task_definition(aws: &Aws, revision: &str) -> Result<()> {
    sent("DeregisterTaskDefinition", aws.ecs.deregister_task_definition().task_definition(revision).send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_sizes_follow_the_documented_table() {
        assert_eq!(fargate_memories(256), Some(vec![512, 1024, 2048]));
        assert_eq!(fargate_memories(512).unwrap(), [1024, 2048, 3072, 4096]);
        assert_eq!(fargate_memories(4096).unwrap().last(), Some(&30720));
        assert_eq!(fargate_memories(8192).unwrap()[..2], [16384, 20480]);
        assert_eq!(fargate_memories(16384).unwrap().last(), Some(&122880));
        assert!(fargate_memories(300).is_none());
        assert!(validate_fargate_size(1024, 2048).is_ok());
        let err = validate_fargate_size(256, 4096).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid task_definition.memory 4096: with cpu 256, Fargate allows memory 512, 1024, 2048 (MiB)"
        );
        let err = validate_fargate_size(2048, 2048).unwrap_err().to_string();
        assert!(err.contains("4096 to 16384 in steps of 1024"), "{err}");
    }
}
