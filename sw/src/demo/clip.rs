//! Segment: detecting local manipulations of digits on kinds the detector never saw, with a
//! mini CLIP's vision tower frozen (linear probe), LN-tuned or fully fine-tuned (fp32, two
//! paired seeds; `workloads::clip::demo::demo_segment`).

use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::error::Result;
use std::time::Duration;

pub struct Clip;

impl Segment for Clip {
    fn name(&self) -> &'static str {
        "clip"
    }

    fn shows(&self, _tour: &Tour) -> String {
        "CLIP manipulation detection: a mini CLIP pretrained on captioned digits, detectors \
         trained on splice / blur / warp and tested on blend / erase / contrast: linear probe, \
         LN-tuning and full fine-tuning (fp32, 2 paired seeds)"
            .into()
    }

    fn lane(&self) -> Lane {
        Lane::Host
    }

    fn estimate(&self, _tour: &Tour) -> Duration {
        Duration::from_secs(100)
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let dir = tour.dir(self)?;
        let r = crate::workloads::clip::demo::demo_segment(&dir)?;
        let f = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.3}"));
        let kinds: Vec<String> = r["test_kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        let mut header = vec!["tune (trainable share)".to_string()];
        header.extend(kinds.iter().map(|k| format!("{k} AUROC")));
        header.push("mean AUROC".into());
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = Table::new(
            format!(
                "held-out AUROC after {} detector epochs, mean of {} seeds",
                r["epochs"], r["seeds"]
            ),
            &header,
        );
        for arm in ["linear", "ln", "full"] {
            let t = &r["tunes"][arm];
            let share = t["trainable_fraction"].as_f64().unwrap_or(f64::NAN);
            let mut row = vec![format!("{arm} ({:.2}%)", 100.0 * share)];
            row.extend(kinds.iter().map(|k| f(&t["per_kind"][k]["auroc"]["mean"])));
            row.push(format!(
                "{} +- {}",
                f(&t["mean_auroc"]["mean"]),
                f(&t["mean_auroc"]["se"])
            ));
            table.row(row);
        }
        let diff = |k: &str| {
            let m = &r["paired"][k];
            format!(
                "{:+.3} +- {:.3}",
                m["mean"].as_f64().unwrap_or(f64::NAN),
                m["se"].as_f64().unwrap_or(f64::NAN)
            )
        };
        let notes = vec![
            format!(
                "backbone: zero-shot test accuracy {} after 10 epochs of contrastive pretraining",
                f(&r["zero_shot_accuracy"])
            ),
            format!(
                "paired differences of mean held-out AUROC: ln - linear {}, full - linear {}, \
                 ln - full {}",
                diff("ln-linear"),
                diff("full-linear"),
                diff("ln-full")
            ),
        ];
        let mut images = Vec::new();
        let labels = [
            "test features on the sphere (head direction x principal axis), frozen backbone \
             (linear probe)",
            "test features on the sphere, LN-tuned backbone",
            "test features on the sphere, fully fine-tuned backbone",
        ];
        for (label, p) in labels
            .iter()
            .zip(r["sphere_png"].as_array().into_iter().flatten())
        {
            if let Some(p) = p.as_str() {
                let path = std::path::PathBuf::from(p);
                if path.exists() {
                    images.push((label.to_string(), path));
                }
            }
        }
        Ok(SegmentReport {
            tables: vec![table],
            images,
            notes,
            results: r,
        })
    }
}
