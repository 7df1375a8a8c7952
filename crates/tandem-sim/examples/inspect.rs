//! Diagnoses one simulated run: endpoint and link counters, display gaps over 40 ms, and
//! the frames around every stall whose settling takes longer than a frame interval.
//!
//! `cargo run --release -p tandem-sim --example inspect -- PROFILE [SEED]`

use std::time::Duration;

use tandem_sim::profile::parse_profile_or_spec;
use tandem_sim::runner::{FrameRecord, RunResult, Scenario, run};

fn describe(f: &FrameRecord) -> String {
    format!(
        "frame {} captured {:?} completed +{:?} shown +{:?} repaired {}",
        f.frame_id,
        f.capture,
        f.completed_at.map(|c| c.saturating_sub(f.capture)),
        f.latency(),
        f.repaired
    )
}

fn gaps(r: &RunResult) {
    let mut last: Option<Duration> = None;
    for f in &r.frames {
        let Some(at) = f.shown_at else { continue };
        if let Some(prev) = last.filter(|p| at - *p > Duration::from_millis(40)) {
            println!("display gap {:?}, ended by:", at - prev);
            let i = f.frame_id as usize;
            r.frames[i.saturating_sub(4)..=i]
                .iter()
                .for_each(|g| println!("   {}", describe(g)));
        }
        last = Some(at);
    }
}

fn stalls(r: &RunResult) {
    let interval = r.scenario.frame_interval();
    for &(start, end) in &r.stall_windows {
        let slow = r.frames.iter().any(|f| {
            f.capture < end + interval
                && f.shown_at.is_some_and(|at| at > end + interval)
                && f.latency().is_some_and(|l| l > Duration::from_millis(8))
        });
        if slow {
            println!("stall {start:?}..{end:?} ({:?}):", end - start);
            r.frames
                .iter()
                .filter(|f| f.capture + interval * 2 >= start && f.capture <= end + interval * 2)
                .for_each(|g| println!("   {}", describe(g)));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let profile = args.get(1).map_or("awdl-stall", String::as_str);
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let link = match parse_profile_or_spec(profile) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("inspect: {e}");
            std::process::exit(2);
        }
    };
    let r = run(&Scenario::new(link, seed));
    println!("{:#?}\n{:#?}", r.sender, r.receiver);
    println!(
        "forward link {:?}\nreverse link {:?}",
        r.forward_link, r.reverse_link
    );
    gaps(&r);
    stalls(&r);
}
