//! DescribeLogDirs (v1-v4): the one data directory, its partitions' sizes
//! and, from v4, the file system's total and usable bytes. On one node there
//! is no replica to lag behind, so every offset lag is 0.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

pub async fn handle(broker: Arc<Broker>, req: DescribeLogDirsRequest, version: i16) -> DescribeLogDirsResponse {
    tokio::task::spawn_blocking(move || describe(&broker, &req, version))
        .await
        .expect("describe log dirs does not panic")
}

fn describe(broker: &Broker, req: &DescribeLogDirsRequest, version: i16) -> DescribeLogDirsResponse {
    // `None`: every partition; otherwise the partitions asked for, per topic.
    let wanted: Option<HashMap<&str, Vec<i32>>> = req.topics.as_ref().map(|topics| {
        let mut map: HashMap<&str, Vec<i32>> = HashMap::new();
        for t in topics {
            map.entry(t.topic.as_str()).or_default().extend(&t.partitions);
        }
        map
    });
    let mut topics = Vec::new();
    for topic in broker.topics() {
        let filter = match &wanted {
            None => None,
            Some(map) => match map.get(topic.meta.name.as_str()) {
                Some(partitions) => Some(partitions),
                None => continue,
            },
        };
        // Partitions that do not exist are left out, as Kafka leaves out replicas it does not host.
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .filter(|p| filter.is_none_or(|f| f.contains(&p.index)))
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index)
                    .with_partition_size(p.log.size_bytes() as i64)
                    .with_offset_lag(0)
                    .with_is_future_key(false)
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.meta.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let dir = broker.logs.dir();
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(path.display().to_string()))
        .with_topics(topics);
    if version >= 4 {
        let (total, usable) = disk_space(&path).unwrap_or((-1, -1));
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Total and available bytes of the file system holding `path`.
fn disk_space(path: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid out-pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as i64;
    Some((stat.f_blocks as i64 * block, stat.f_bavail as i64 * block))
}
