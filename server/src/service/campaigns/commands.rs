//! The `fieldsync-server` subcommands of random inspection, over the same operations as the API.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::*;

/// `fieldsync-server matters ...`.
#[derive(Subcommand)]
pub enum MattersCommand {
    /// Replace the random-check matter list with FILE (the shape of shared/data/matters.json).
    Import { file: PathBuf },
}

/// `fieldsync-server calendar ...`.
#[derive(Subcommand)]
pub enum CalendarCommand {
    /// Replace a year of the bureau's calendar with FILE:
    /// `{"holidays": ["YYYY-MM-DD", ...], "working_weekends": [...]}`.
    Set { year: i16, file: PathBuf },
    /// Print a year of the bureau's calendar as JSON.
    Show { year: i16 },
}

/// `fieldsync-server draw ...`.
#[derive(Subcommand)]
pub enum DrawCommand {
    /// Recompute a campaign's stored draw from its published record (commitment, snapshot
    /// hashes, draw); exits 1 if anything differs.
    Verify { campaign_id: String },
}

/// The days of a calendar file.
#[derive(serde::Deserialize)]
struct CalendarFile {
    holidays: Vec<Date>,
    working_weekends: Vec<Date>,
}

/// Runs `fieldsync-server matters ...`.
pub fn matters(store: &dyn Store, command: MattersCommand, by: &str, now_ms: i64) -> anyhow::Result<()> {
    match command {
        MattersCommand::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let list = parse_matters(&bytes).map_err(anyhow::Error::msg)?;
            println!("imported {} matters", store.import_matters(&list, by, now_ms)?);
        }
    }
    Ok(())
}

/// Runs `fieldsync-server calendar ...`.
pub fn calendar(store: &dyn Store, command: CalendarCommand, by: &str, now_ms: i64) -> anyhow::Result<()> {
    match command {
        CalendarCommand::Set { year, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let days: CalendarFile = serde_json::from_str(&text).context("not a calendar file")?;
            let calendar = WorkingCalendar {
                holidays: days.holidays.into_iter().collect(),
                working_weekends: days.working_weekends.into_iter().collect(),
            };
            check_calendar_year(year, &calendar).map_err(anyhow::Error::msg)?;
            store.put_calendar_year(year, &calendar, by, now_ms)?;
            println!(
                "{year}: {} holidays, {} working weekend days",
                calendar.holidays.len(),
                calendar.working_weekends.len()
            );
        }
        CalendarCommand::Show { year } => {
            let Some(calendar) = store.calendar_year(year)? else { bail!("no calendar for {year}") };
            println!("{}", serde_json::to_string_pretty(&calendar)?);
        }
    }
    Ok(())
}

/// Runs `fieldsync-server draw ...`.
pub fn draw(store: &dyn Store, command: DrawCommand) -> anyhow::Result<()> {
    match command {
        DrawCommand::Verify { campaign_id } => {
            let Some(campaign) = store.campaign(&campaign_id)? else { bail!("no campaign {campaign_id}") };
            let verification = verify(&campaign)?;
            println!("{}", serde_json::to_string_pretty(&verification)?);
            if !verification.matches() {
                bail!("the draw of campaign {campaign_id} does not match its published record");
            }
        }
    }
    Ok(())
}
