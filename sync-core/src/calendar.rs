//! Working days, as the bureau's calendar has them, and the publication deadlines counted in
//! them.
//!
//! A day is a working day when the calendar lists it as an adjusted working day (调休上班, a
//! weekend day worked to make up for a holiday), or when it is a weekday the calendar does not
//! list as a public holiday. The State Council publishes each year's holidays and adjusted
//! days late in the year before; the bureau enters them as data, so nothing here knows any
//! year's holidays.
//!
//! Deadlines (DOMAIN.md, random inspection item 7 and U2): results of a random inspection are
//! public within [`RESULT_PUBLICATION_WORKING_DAYS`] working days of the end of the check;
//! penalty decisions within [`PENALTY_PUBLICATION_WORKING_DAYS`]. "Within n working days of"
//! a day counts from the working day after it: the deadline is the n-th working day after it,
//! and publication on that day is in time.

use std::collections::BTreeSet;

pub use jiff::civil::Date;
use jiff::civil::Weekday;
use serde::{Deserialize, Serialize};

/// Results of a random inspection are public within this many working days (DOMAIN.md,
/// random inspection, item 7).
pub const RESULT_PUBLICATION_WORKING_DAYS: u32 = 20;

/// Penalty decisions are public within this many working days (U2).
pub const PENALTY_PUBLICATION_WORKING_DAYS: u32 = 7;

/// The bureau's calendar: public holidays on weekdays, and weekend days that are worked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingCalendar {
    /// Days off that would otherwise be working days (法定节假日 and the days joined to them).
    pub holidays: BTreeSet<Date>,
    /// Saturdays and Sundays that are working days (调休上班).
    pub working_weekends: BTreeSet<Date>,
}

/// Why a calendar is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{date} is listed both as a holiday and as a working weekend day")]
    BothHolidayAndWorking { date: Date },
    #[error("{date} is listed as a working weekend day but is a {weekday:?}")]
    WorkingWeekendOnWeekday { date: Date, weekday: Weekday },
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl WorkingCalendar {
    /// Checks that the calendar says one thing of each day: no day is both a holiday and a
    /// working weekend day, and every working weekend day falls on a weekend.
    pub fn check(&self) -> Result<(), CalendarError> {
        if let Some(date) = self.holidays.intersection(&self.working_weekends).next() {
            return Err(CalendarError::BothHolidayAndWorking { date: *date });
        }
        if let Some(date) = self.working_weekends.iter().find(|d| !is_weekend(**d)) {
            return Err(CalendarError::WorkingWeekendOnWeekday { date: *date, weekday: date.weekday() });
        }
        Ok(())
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.working_weekends.contains(&date) {
            return true;
        }
        !is_weekend(date) && !self.holidays.contains(&date)
    }

    /// The `n`-th working day after `date` (`date` itself not counted); `date` when `n` is 0.
    /// `None` only past the end of the civil calendar (year 9999).
    pub fn add_working_days(&self, date: Date, n: u32) -> Option<Date> {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day.tomorrow().ok()?;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        Some(day)
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not after `from`).
    pub fn working_days_between(&self, from: Date, to: Date) -> u32 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            let Ok(next) = day.tomorrow() else { break };
            day = next;
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }
}

/// Where a publication stands against its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Publication {
    /// Published on or before the deadline.
    OnTime { deadline: Date },
    /// Published after the deadline, this many working days late.
    Late { deadline: Date, working_days_late: u32 },
    /// Not published, and the deadline has not passed.
    Due { deadline: Date },
    /// Not published, and the deadline passed this many working days ago.
    Overdue { deadline: Date, working_days_late: u32 },
}

/// Where the publication of something that must be public within `working_days` of `ended_on`
/// stands on `today`, given when (if ever) it was published.
pub fn publication(
    calendar: &WorkingCalendar,
    ended_on: Date,
    working_days: u32,
    published_on: Option<Date>,
    today: Date,
) -> Publication {
    let deadline = calendar.add_working_days(ended_on, working_days).unwrap_or(Date::MAX);
    match published_on {
        Some(published) if published <= deadline => Publication::OnTime { deadline },
        Some(published) => {
            Publication::Late { deadline, working_days_late: calendar.working_days_between(deadline, published) }
        }
        None if today <= deadline => Publication::Due { deadline },
        None => Publication::Overdue { deadline, working_days_late: calendar.working_days_between(deadline, today) },
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    /// An example calendar in the shape the State Council gives each year: a week-long holiday
    /// with two weekend days worked around it, and a three-day holiday joined to a weekend.
    fn calendar() -> WorkingCalendar {
        WorkingCalendar {
            holidays: [
                date(2026, 10, 1),
                date(2026, 10, 2),
                date(2026, 10, 5),
                date(2026, 10, 6),
                date(2026, 10, 7),
                date(2026, 10, 8),
                date(2026, 12, 31),
            ]
            .into(),
            working_weekends: [date(2026, 9, 27), date(2026, 10, 10)].into(),
        }
    }

    #[test]
    fn working_days_follow_the_calendar() {
        let calendar = calendar();
        calendar.check().unwrap();
        let cases = [
            (date(2026, 9, 25), true),   // a Friday
            (date(2026, 9, 26), false),  // a Saturday
            (date(2026, 9, 27), true),   // a Sunday worked
            (date(2026, 10, 1), false),  // a holiday on a Thursday
            (date(2026, 10, 3), false),  // a Saturday inside the holiday
            (date(2026, 10, 9), true),   // the Friday after it
            (date(2026, 10, 10), true),  // a Saturday worked
            (date(2026, 10, 11), false), // a Sunday
        ];
        for (day, working) in cases {
            assert_eq!(calendar.is_working_day(day), working, "{day}");
        }
    }

    #[test]
    fn u2_and_random_inspection_publication_deadlines() {
        let calendar = calendar();
        let cases = [
            // ended on, working days, published on, today, expected
            (
                date(2026, 11, 2),
                20,
                Some(date(2026, 11, 30)),
                date(2026, 12, 1),
                Publication::OnTime { deadline: date(2026, 11, 30) },
            ),
            (
                date(2026, 11, 2),
                20,
                Some(date(2026, 12, 2)),
                date(2026, 12, 3),
                Publication::Late { deadline: date(2026, 11, 30), working_days_late: 2 },
            ),
            (date(2026, 11, 2), 20, None, date(2026, 11, 30), Publication::Due { deadline: date(2026, 11, 30) }),
            (
                date(2026, 11, 2),
                20,
                None,
                date(2026, 12, 5),
                Publication::Overdue { deadline: date(2026, 11, 30), working_days_late: 4 },
            ),
            // The week-long holiday does not count; the Sunday and Saturday worked do.
            (date(2026, 9, 25), 7, None, date(2026, 10, 1), Publication::Due { deadline: date(2026, 10, 12) }),
            // A holiday at the year's end is skipped.
            (date(2026, 12, 30), 1, None, date(2026, 12, 31), Publication::Due { deadline: date(2027, 1, 1) }),
        ];
        for (ended, days, published, today, expected) in cases {
            assert_eq!(publication(&calendar, ended, days, published, today), expected, "{ended} {days}");
        }
        assert_eq!(RESULT_PUBLICATION_WORKING_DAYS, 20);
        assert_eq!(PENALTY_PUBLICATION_WORKING_DAYS, 7);
    }

    #[test]
    fn a_calendar_that_says_two_things_of_a_day_is_refused() {
        let mut both = calendar();
        both.holidays.insert(date(2026, 9, 27));
        assert_eq!(both.check(), Err(CalendarError::BothHolidayAndWorking { date: date(2026, 9, 27) }));
        let mut weekday = calendar();
        weekday.working_weekends.insert(date(2026, 9, 28));
        assert!(matches!(weekday.check(), Err(CalendarError::WorkingWeekendOnWeekday { .. })));
    }
}
