//! A sweep emitted as a Slurm array runs on a real single-node Slurm (Debian's slurm-wlm and
//! munge, started on loopback by `tests/slurm/cluster.sh`): every point is trained and
//! evaluated by its array task, then the dependent job compares them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The daemons started for one test, stopped when it ends however it ends.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let out = Command::new(script()).arg("start").arg(dir).output().unwrap();
        let cluster = Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf") };
        assert!(
            out.status.success(),
            "Slurm did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/cluster.sh")
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn an_emitted_array_trains_every_point_then_compares() {
    let missing: Vec<&str> =
        ["munged", "slurmctld", "slurmd", "sbatch"].into_iter().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: {} not installed (apt-get install slurm-wlm munge)",
            missing.join(", ")
        );
        return;
    }
    if !running_as_root() {
        eprintln!("SKIPPED: a loopback slurmd runs jobs as their submitter, which needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("slurm"));
    let cfg = common::write(tmp.path(), "tiny.toml", common::TINY);
    let (sweep, script) = (tmp.path().join("sweep"), tmp.path().join("sweep.sbatch"));
    let out = common::relatent(&[
        "sweep",
        "--config",
        cfg.to_str().unwrap(),
        "--models",
        "absae,beta-vae",
        "--weights",
        "1",
        "--seeds",
        "3,4",
        "--out",
        sweep.to_str().unwrap(),
        "--quiet",
        "--emit-sbatch",
        script.to_str().unwrap(),
        "--cpus",
        "1",
        "--time",
        "10:00",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let submitted = cluster.command("sbatch").arg(&script).output().unwrap();
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));

    let table = sweep.join("comparison.md");
    let start = Instant::now();
    while !table.exists() {
        let logs: Vec<String> = std::fs::read_dir(sweep.join("logs"))
            .map(|d| d.flatten().map(|e| e.path().display().to_string()).collect())
            .unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no comparison after 5 minutes; logs: {logs:?}\n{}",
            logs.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for point in
        ["absae-beta1-seed3", "absae-beta1-seed4", "beta-vae-beta1-seed3", "beta-vae-beta1-seed4"]
    {
        let eval = common::read_json(&sweep.join(point).join("eval.json"));
        assert!(eval["disentanglement"]["dci"]["mean"].is_number(), "{point}: {eval}");
    }
    // The comparison job writes the table atomically; its log shows it finished.
    let table = std::fs::read_to_string(table).unwrap();
    assert!(table.contains("| absae-beta1 | absae | β = 1 | 4 | 2 | 3, 4 |"), "{table}");
    assert!(table.contains(" ± "), "{table}");
}
