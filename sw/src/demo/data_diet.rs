//! Segment: "Deep Learning on a Data Diet" in miniature: EL2N scores from one early training
//! run find the 10 % of training labels that were flipped, and the top-EL2N half of the data
//! trains the CNN next to a random half and the full data (`workloads::data_diet::demo_segment`).

use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::error::Result;
use std::time::Duration;

pub struct DataDiet;

impl Segment for DataDiet {
    fn name(&self) -> &'static str {
        "data-diet"
    }

    fn shows(&self, _tour: &Tour) -> String {
        "data diet: EL2N at epoch 1 finds flipped labels (10 % noise), and training on the \
         top-EL2N half next to a random half and the full data (the CNN, fp32)"
            .into()
    }

    fn lane(&self) -> Lane {
        Lane::Host
    }

    fn estimate(&self, _tour: &Tour) -> Duration {
        Duration::from_secs(90)
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let dir = tour.dir(self)?;
        let r = crate::workloads::data_diet::demo_segment(&dir)?;
        let pct = |k: &str| {
            r[k].as_f64()
                .map_or("-".into(), |v| format!("{:.2}", 100.0 * v))
        };
        let mut table = Table::new(
            "CNN test accuracy after 4 epochs, 10 % of the training labels flipped",
            &["training set", "test accuracy (%)"],
        );
        table.row(vec!["full (8,000)".into(), pct("test_acc_full")]);
        table.row(vec!["top-EL2N half".into(), pct("test_acc_el2n_keep_0.5")]);
        table.row(vec!["random half".into(), pct("test_acc_random_keep_0.5")]);
        let mut notes =
            vec![format!(
            "EL2N (one run, epoch 1) ranks the flipped labels first: AUROC {}, {} % of the top \
             10 % of scores are flipped examples",
            r["el2n_auroc"].as_f64().map_or("-".into(), |v| format!("{v:.3}")),
            pct("el2n_top_r_precision"),
        )];
        notes.push(
            "with noisy labels the top-EL2N subset is mostly the mislabeled and hardest \
             examples, so it need not train better than a random one: the paper keeps the \
             highest scores on clean data"
                .into(),
        );
        let mut images = Vec::new();
        for (label, key) in [
            (
                "the 64 highest-EL2N training images (flipped labels in red)",
                "top_el2n_png",
            ),
            ("test accuracy against the fraction kept", "accuracy_png"),
        ] {
            if let Some(p) = r[key].as_str() {
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
