//! The comparison as a picture: one bar per table row, its length Quorum's advantage over
//! etcd (above 1: Quorum did better), with etcd's level marked.

use std::path::Path;

use plotters::prelude::*;

use super::compare::{Row, GENERATOR_CPU};

const WIDTH: u32 = 1000;
const ROW_HEIGHT: i32 = 26;
const TOP: i32 = 50;
const LABEL_WIDTH: i32 = 420;
const BAR_LEFT: i32 = LABEL_WIDTH + 10;
const BAR_RIGHT: i32 = WIDTH as i32 - 70;

pub fn write(path: &Path, rows: &[Row], etcd_version: &str) -> anyhow::Result<()> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.metric != GENERATOR_CPU).collect();
    let height = (TOP + ROW_HEIGHT * rows.len() as i32 + 40) as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows
        .iter()
        .map(|r| r.advantage())
        .fold(2.0_f64, f64::max)
        .min(10.0);
    let x = |v: f64| BAR_LEFT + ((BAR_RIGHT - BAR_LEFT) as f64 * v.min(max) / max) as i32;
    let font = ("sans-serif", 14).into_font();
    root.draw(&Text::new(
        format!(
            "Quorum's advantage over {etcd_version} (× etcd; right of the line: Quorum better)"
        ),
        (10, 15),
        ("sans-serif", 16).into_font(),
    ))?;
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * i as i32;
        let adv = r.advantage();
        let colour = if adv >= 1.0 {
            RGBColor(46, 139, 87)
        } else {
            RGBColor(230, 126, 34)
        };
        root.draw(&Text::new(
            format!("{} — {}", r.case, r.metric),
            (10, y + 5),
            font.clone(),
        ))?;
        root.draw(&Rectangle::new(
            [(BAR_LEFT, y + 3), (x(adv), y + ROW_HEIGHT - 5)],
            colour.filled(),
        ))?;
        root.draw(&Text::new(
            format!("{adv:.2}"),
            (x(adv) + 6, y + 5),
            font.clone(),
        ))?;
    }
    let bottom = TOP + ROW_HEIGHT * rows.len() as i32;
    root.draw(&PathElement::new(
        vec![(x(1.0), TOP - 8), (x(1.0), bottom)],
        BLACK.stroke_width(2),
    ))?;
    root.draw(&Text::new("etcd = 1", (x(1.0) - 28, bottom + 8), font))?;
    root.present()?;
    Ok(())
}
