//! The demo's phones: field-client devices enrolled for every team, filling, photographing,
//! signing and logging records offline, and syncing them over HTTP like any officer's device.

use super::*;

/// How an inspection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// Both officers sign: locked.
    Locked,
    /// Both set the conclusion offline, differently: an open conflict nobody settled.
    Conflict,
    /// The partner adds to the observations offline after the lead signed: refused and
    /// quarantined; then both sign.
    RefusedThenLocked,
}

/// One task's inspection, by its team's two phones.
pub(super) struct Inspection {
    pub(super) task_id: String,
    /// The campaign's, when the draw made the task.
    pub(super) campaign_id: Option<String>,
    pub(super) entity: EntityRow,
    pub(super) checklist: Vec<String>,
    /// The team's first officer by id: starts the record and signs first.
    pub(super) lead: String,
    pub(super) partner: String,
    pub(super) ending: Ending,
    /// The lead seals something while nothing records (R2).
    pub(super) seal_without_recording: bool,
    pub(super) record_id: String,
    pub(super) photo: String,
}

/// What the demo made, read back through the service as a supervisor.
pub(super) struct Made {
    pub(super) campaign_id: String,
    pub(super) campaign_tasks: usize,
    pub(super) published: usize,
    pub(super) other_tasks: usize,
    pub(super) devices: usize,
    pub(super) records: usize,
    pub(super) locked: usize,
    pub(super) conflicts: usize,
    pub(super) refused_then_locked: usize,
    pub(super) quarantined: usize,
    pub(super) photos: usize,
    pub(super) photos_with_exif: usize,
    pub(super) log_entries: usize,
    pub(super) r2_findings: Vec<String>,
    /// Two officers who made records, to print.
    pub(super) officers: [String; 2],
}

/// The supervisor the demo acts as for the campaign and the tasks, as the service knows a caller.
pub(super) fn supervisor() -> Caller {
    Caller {
        officer_id: SUPERVISOR.into(),
        roles: vec!["supervisor".into()],
        device_id: None,
        session_id: "demo".into(),
    }
}

/// How many records end each way: a tenth with a conflict, a twenty-fifth with a refused change
/// (at least one of each), the rest locked; half of the locked ones on the campaign's tasks.
pub(super) fn endings(records: usize) -> (usize, usize, usize) {
    let conflicts = (records / 10).max(1);
    let refused = (records / 25).max(1);
    let campaign = ((records - conflicts - refused) / 2).max(1);
    (conflicts, refused, campaign)
}

/// Makes the campaign, the tasks and the records, and reads back what was made.
pub(super) async fn populate(
    context: &Context,
    city: &City,
    options: &DemoOptions,
    address: SocketAddr,
) -> anyhow::Result<Made> {
    let supervisor = supervisor();
    let (conflicts, refused, campaign_size) = endings(options.records);
    let now = now_ms();
    let today = sync_core::campaigns::date_of_ms(now).ok_or_else(|| anyhow!("the clock is out of range"))?;
    let ends_on = today.checked_add(jiff::Span::new().days(13)).context("the campaign's last day")?;

    // The campaign, created and drawn as `POST /v1/campaigns` and its draw do.
    let (from_ms, until_ms) = sync_core::campaigns::period_ms(today, ends_on);
    let certificates = context.store.certificates(None)?;
    let eligible = sync_core::campaigns::eligible_officers(&certificates, from_ms, until_ms);
    if eligible.len() < 2 {
        bail!("fewer than two officers of the city hold a certificate valid from {today} to {ends_on}");
    }
    let campaign_id = format!("C-DEMO-{}", today.strftime("%Y%m%d"));
    let special = (campaign_size / 5).min(count_tier(city, "special"));
    let key = (campaign_size / 4).min(count_tier(city, "key"));
    let general = campaign_size - special - key;
    let tiers = [("special", special), ("key", key), ("general", general)]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(tier, count)| QuotaRequest { tier: tier.into(), per_mille: None, count: Some(count as u32) })
        .collect();
    let new = NewCampaign {
        campaign_id: Some(campaign_id.clone()),
        matter: CAMPAIGN_MATTER.into(),
        tiers,
        divisions: vec![],
        period: today.strftime("%Y-%m").to_string(),
        starts_on: today.to_string(),
        ends_on: ends_on.to_string(),
        team_size: 2,
        max_tasks_per_officer: (2 * campaign_size).div_ceil(eligible.len()) as u32 + 1,
        joint_departments: vec![],
    };
    campaigns::create_campaign(context, &supervisor, new).await.context("creating the campaign")?;
    let (_, drawn) = campaigns::draw_campaign(context, &supervisor, campaign_id.clone(), Some("demo".into()))
        .await
        .context("drawing the campaign")?;
    let campaign_checklist = city.checklists.get(CAMPAIGN_MATTER).cloned().unwrap_or_default();
    let mut inspections = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for task in &drawn {
        used.insert(task.entity_id.clone());
        inspections.push(inspection(city, task, Some(&campaign_id), &campaign_checklist, Ending::Locked)?);
    }

    // The other tasks, created as `POST /v1/tasks` does, for officers certified over their window.
    let (window_start_ms, window_end_ms) = (now - HOUR, now + 14 * DAY);
    let officers = sync_core::campaigns::eligible_officers(&certificates, window_start_ms, window_end_ms);
    if officers.len() < 2 {
        bail!("fewer than two officers of the city hold a certificate valid for the next two weeks");
    }
    let task_checklist = city.checklists.get(TASK_MATTER).cloned().unwrap_or_default();
    let matter = format!("{TASK_MATTER} 污染防治设施运行情况检查");
    let others = options.records - drawn.len();
    let mut candidates = (0..city.entities.len()).map(|i| &city.entities[(i * 7919) % city.entities.len()]);
    for n in 0..others {
        let entity = loop {
            let entity = candidates.next().ok_or_else(|| anyhow!("not enough entities for {others} tasks"))?;
            if used.insert(entity.entity_id.clone()) {
                break entity;
            }
        };
        let ending = if n < conflicts {
            Ending::Conflict
        } else if n < conflicts + refused {
            Ending::RefusedThenLocked
        } else {
            Ending::Locked
        };
        let task =
            create_task(context, &supervisor, &officers, n, &entity.entity_id, &matter, window_start_ms, window_end_ms)
                .await?;
        inspections.push(inspection(city, &task, None, &task_checklist, ending)?);
    }
    // The seal without a recording: on a plain inspection outside the campaign when there is one.
    let sealed = inspections.iter().position(|i| i.campaign_id.is_none() && i.ending == Ending::Locked).unwrap_or(0);
    inspections[sealed].seal_without_recording = true;

    let mut devices = enroll_devices(&inspections, &options.data, address).await?;
    let mut tally = Tally::default();
    work(&mut devices, &mut inspections, &mut tally).await?;

    // The campaign's results, public once its records are locked.
    let mut published = 0;
    for inspection in inspections.iter().filter(|i| i.campaign_id.is_some()) {
        campaigns::publish_result(context, &supervisor, campaign_id.clone(), inspection.task_id.clone())
            .await
            .with_context(|| format!("publishing the result of {}", inspection.task_id))?;
        published += 1;
    }

    let mut made = read_back(context, &supervisor, &inspections, &devices, &tally).await?;
    made.campaign_id = campaign_id;
    made.campaign_tasks = drawn.len();
    made.published = published;
    made.other_tasks = others;
    Ok(made)
}

pub(super) fn count_tier(city: &City, tier: &str) -> usize {
    city.entities.iter().filter(|e| e.tier == tier).count()
}

/// Creates the `n`th task outside the campaign for two of `officers`, as `POST /v1/tasks` does;
/// a pair with an officer recused from the entity gives way to the next pair.
#[allow(clippy::too_many_arguments)]
pub(super) async fn create_task(
    context: &Context,
    supervisor: &Caller,
    officers: &[String],
    n: usize,
    entity_id: &str,
    matter: &str,
    window_start_ms: i64,
    window_end_ms: i64,
) -> anyhow::Result<crate::store::Task> {
    for shift in 0..officers.len() {
        let first = (2 * n + shift) % officers.len();
        let second = (first + 1) % officers.len();
        let mut team = vec![officers[first].clone(), officers[second].clone()];
        team.sort();
        let new = tasks::NewTask {
            task_id: Some(format!("T-DEMO-{:04}", n + 1)),
            entity_id: entity_id.to_string(),
            matter: matter.to_string(),
            team,
            window_start_ms,
            window_end_ms,
        };
        match tasks::create(context, supervisor, new).await {
            Ok(task) => return Ok(task),
            Err(error) if error.status_and_code().1 == "officer_recused" => continue,
            Err(error) => return Err(error).with_context(|| format!("creating task {} on {entity_id}", n + 1)),
        }
    }
    bail!("every pair of officers is recused from {entity_id}")
}

pub(super) fn inspection(
    city: &City,
    task: &crate::store::Task,
    campaign_id: Option<&str>,
    checklist: &[String],
    ending: Ending,
) -> anyhow::Result<Inspection> {
    let mut team = task.team.clone();
    team.sort();
    let [lead, partner] = &team[..] else { bail!("task {} has a team of {}, not 2", task.task_id, team.len()) };
    Ok(Inspection {
        task_id: task.task_id.clone(),
        campaign_id: campaign_id.map(str::to_string),
        entity: city.entity(&task.entity_id)?.clone(),
        checklist: checklist.to_vec(),
        lead: lead.clone(),
        partner: partner.clone(),
        ending,
        seal_without_recording: false,
        record_id: String::new(),
        photo: String::new(),
    })
}

/// Enrolls one phone for every officer on a team, in `DATA/devices/<officer id>`, as the
/// `fieldsync enroll` command does.
pub(super) async fn enroll_devices(
    inspections: &[Inspection],
    data: &Path,
    address: SocketAddr,
) -> anyhow::Result<BTreeMap<String, Device>> {
    // Plain HTTP to an address that is not the loopback one is the demo's own choice, allowed
    // explicitly.
    let reachable = reachable(address);
    let server = format!("http://{reachable}");
    let transport = Transport { ca_certificate: None, insecure_http: !reachable.ip().is_loopback() };
    let officers: BTreeSet<&str> = inspections.iter().flat_map(|i| [i.lead.as_str(), i.partner.as_str()]).collect();
    let mut devices = BTreeMap::new();
    for officer in officers {
        let dir = data.join("devices").join(officer);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let clock = field_client::device::system_clock();
        let device = field_client::remote::enroll_with(&dir, &server, officer, OFFICER_PASSWORD, &transport, clock)
            .await
            .with_context(|| format!("enrolling {officer}'s phone"))?;
        devices.insert(officer.to_string(), device);
    }
    Ok(devices)
}

/// What the phones' syncs reported.
#[derive(Default)]
pub(super) struct Tally {
    /// Changes refused, by record.
    pub(super) refused: BTreeMap<String, Vec<String>>,
    pub(super) photos_uploaded: usize,
}

impl Tally {
    pub(super) fn add(&mut self, officer: &str, summary: SyncSummary) -> anyhow::Result<()> {
        if let Some((record, error)) = summary.errors.first() {
            bail!("{officer}'s phone could not apply the server's message for {record}: {error}");
        }
        if let Some((sha256, code)) = summary.photo_errors.first() {
            bail!("the server refused {officer}'s photo {sha256}: {code}");
        }
        if let Some((seq, code)) = summary.log_errors.first() {
            bail!("the server refused {officer}'s log entry {seq}: {code}");
        }
        for refused in summary.refused {
            let code = refused.reason["code"].as_str().unwrap_or("").to_string();
            self.refused.entry(refused.record_id).or_default().push(code);
        }
        self.photos_uploaded += summary.photos_uploaded.len();
        Ok(())
    }
}

/// Syncs every phone once, in the order of its officer's id.
pub(super) async fn sync_all(devices: &mut BTreeMap<String, Device>, tally: &mut Tally) -> anyhow::Result<()> {
    let options = SyncOptions::default();
    for (officer, device) in devices.iter_mut() {
        let summary = device.sync(&options, |_| {}).await.with_context(|| format!("syncing {officer}'s phone"))?;
        tally.add(officer, summary)?;
    }
    Ok(())
}

/// Syncs every phone twice: what any phone sent in the first pass, every phone has after the second.
pub(super) async fn settle(devices: &mut BTreeMap<String, Device>, tally: &mut Tally) -> anyhow::Result<()> {
    sync_all(devices, tally).await?;
    sync_all(devices, tally).await
}

pub(super) fn device<'a>(devices: &'a mut BTreeMap<String, Device>, officer: &str) -> anyhow::Result<&'a mut Device> {
    devices.get_mut(officer).ok_or_else(|| anyhow!("no phone for {officer}"))
}

/// The inspections, phase by phase, each phase's edits made offline and then synced.
pub(super) async fn work(
    devices: &mut BTreeMap<String, Device>,
    inspections: &mut [Inspection],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    // The tasks and teams reach the phones.
    sync_all(devices, tally).await?;

    // On site: the lead starts the record, shows both certificates, records, photographs.
    for (n, inspection) in inspections.iter_mut().enumerate() {
        let lead = device(devices, &inspection.lead)?;
        start(lead, inspection, n as u32)
            .with_context(|| format!("{}'s record of {}", inspection.lead, inspection.task_id))?;
    }
    settle(devices, tally).await?;

    // Both at work offline: the partner checks the rest of the list and writes observations, the
    // lead concludes; for a conflict, the partner concludes otherwise.
    for inspection in inspections.iter() {
        let record_id = inspection.record_id.as_str();
        let lead = device(devices, &inspection.lead)?;
        lead.edit(record_id, Edit::SetConclusion("未发现环境违法行为。".into()))?;
        let ended = lead.now_ms();
        lead.edit(record_id, Edit::SetEndedAt(ended))?;
        if !inspection.seal_without_recording {
            lead.append_log(EntryKind::RecordingStopped { reason: "检查结束".into() }, Some(record_id), b"")?;
        }
        lead.append_log(EntryKind::Left, Some(record_id), b"")?;
        let partner = device(devices, &inspection.partner)?;
        partner.append_log(EntryKind::Arrive, Some(record_id), b"")?;
        let half = inspection.checklist.len() / 2;
        partner.modify(record_id, |document, now| {
            for code in &inspection.checklist[half..] {
                let result = ChecklistResult::Compliant;
                document
                    .apply(Edit::SetChecklistItem { code: code.clone(), result, note: None }, now)
                    .map_err(edit_error)?;
            }
            let text = "乙：核查在线监测数据及运行台账，记录完整。";
            document.apply(Edit::AppendObservations(text.into()), now).map_err(edit_error)?;
            if inspection.ending == Ending::Conflict {
                let conclusion = "雨水排口有废水排出，建议立案调查。";
                document.apply(Edit::SetConclusion(conclusion.into()), now).map_err(edit_error)?;
            }
            Ok(())
        })?;
    }
    settle(devices, tally).await?;

    // The partner adds to the observations offline while the lead signs; in one pass in the
    // officers' order, the lead's signature reaches the server first and the addition is refused.
    for inspection in inspections.iter().filter(|i| i.ending != Ending::Conflict) {
        let record_id = inspection.record_id.as_str();
        if inspection.ending == Ending::RefusedThenLocked {
            let partner = device(devices, &inspection.partner)?;
            partner.edit(record_id, Edit::AppendObservations("乙补充：企业承诺三日内补齐台账。".into()))?;
        }
        let lead = device(devices, &inspection.lead)?;
        let signed = lead.sign(record_id).with_context(|| format!("{} signing {record_id}", inspection.lead))?;
        if signed != SignOutcome::Signed {
            bail!("{}'s signature of {record_id} locked it alone", inspection.lead);
        }
    }
    sync_all(devices, tally).await?;

    // The partner signs last, which locks the record.
    for inspection in inspections.iter().filter(|i| i.ending != Ending::Conflict) {
        let record_id = inspection.record_id.as_str();
        let partner = device(devices, &inspection.partner)?;
        let signed = partner.sign(record_id).with_context(|| format!("{} signing {record_id}", inspection.partner))?;
        if signed != SignOutcome::SignedAndLocked {
            bail!("{}'s signature of {record_id} did not lock it", inspection.partner);
        }
    }
    settle(devices, tally).await?;

    // Only the additions made after a signature were refused, one or more on each such record.
    for (record_id, codes) in &tally.refused {
        let expected = inspections.iter().any(|i| i.record_id == *record_id && i.ending == Ending::RefusedThenLocked);
        if !expected {
            bail!("the server refused changes of {record_id} that the demo did not mean to be refused: {codes:?}");
        }
    }
    for inspection in inspections.iter().filter(|i| i.ending == Ending::RefusedThenLocked) {
        if !tally.refused.contains_key(&inspection.record_id) {
            bail!("the offline addition to {} after its signature was not refused", inspection.record_id);
        }
    }
    Ok(())
}

/// The lead's work on site, offline: the record, both officers present with certificates shown,
/// the entity, place and first half of the checklist, a photo, the party questioned, and the
/// enforcement-log entries of each step (some made by the device itself).
pub(super) fn start(lead: &mut Device, inspection: &mut Inspection, n: u32) -> anyhow::Result<()> {
    let record_id = lead.new_record(&inspection.task_id)?;
    lead.append_log(EntryKind::Arrive, Some(&record_id), b"")?;
    lead.add_officer_present(&record_id, &inspection.lead, true)?;
    lead.add_officer_present(&record_id, &inspection.partner, true)?;
    if !inspection.seal_without_recording {
        lead.append_log(EntryKind::RecordingStarted, Some(&record_id), b"")?;
    }
    let entity = &inspection.entity;
    let half = inspection.checklist.len() / 2;
    lead.modify(&record_id, |document, now| {
        let entity_ref = EntityRef {
            entity_id: Some(entity.entity_id.clone()),
            name: Some(entity.name.clone()),
            credit_code: Some(entity.credit_code.clone()),
            legal_representative: Some(entity.legal_representative.clone()),
            discharge_permit: (!entity.discharge_permit.is_empty()).then(|| entity.discharge_permit.clone()),
            tier: Some(entity.tier.clone()),
        };
        let edits = [
            Edit::SetEntity(entity_ref),
            Edit::SetAddress(entity.address.clone()),
            Edit::SetLocation { latitude: entity.latitude, longitude: entity.longitude },
            Edit::SetRecusal { asked: true, answer: Some("不申请回避".into()) },
            Edit::AppendObservations("甲：执法人员出示执法证件，告知检查事由，企业正常生产。".into()),
        ];
        for edit in edits {
            document.apply(edit, now).map_err(edit_error)?;
        }
        for (index, code) in inspection.checklist[..half].iter().enumerate() {
            let non_compliant = (n as usize + index) % 7 == 3;
            let (result, note) = if non_compliant {
                (ChecklistResult::NonCompliant, Some("现场发现问题，已拍照取证。".to_string()))
            } else {
                (ChecklistResult::Compliant, None)
            };
            document.apply(Edit::SetChecklistItem { code: code.clone(), result, note }, now).map_err(edit_error)?;
        }
        Ok(())
    })?;
    let camera = lead.dir().join("camera");
    std::fs::create_dir_all(&camera).with_context(|| format!("creating {}", camera.display()))?;
    let path = camera.join(format!("IMG_{:05}.jpg", n + 1));
    let jpeg = photo(n, lead.now_ms(), entity.latitude, entity.longitude)?;
    std::fs::write(&path, jpeg).with_context(|| format!("writing {}", path.display()))?;
    inspection.photo = lead.add_photo(&record_id, &path, "厂区废水总排口")?;
    lead.append_log(EntryKind::PartyQuestioned, Some(&record_id), "询问企业负责人生产及治污设施运行情况".as_bytes())?;
    if inspection.seal_without_recording {
        let note = "查封未经批准使用的废水旁路阀门";
        lead.edit(&record_id, Edit::AddMeasure(Measure { kind: MeasureKind::SealOrSeizure, note: note.into() }))?;
        lead.append_log(EntryKind::SealOrSeizure, Some(&record_id), note.as_bytes())?;
    }
    inspection.record_id = record_id;
    Ok(())
}

/// A 320×240 JPEG as a phone's camera writes it, with an EXIF block claiming when (`taken_at_ms`,
/// as local time in UTC+8) and where it was taken. A bar code of `n` along its top makes every
/// photo's bytes differ.
pub(super) fn photo(n: u32, taken_at_ms: i64, latitude: f64, longitude: f64) -> anyhow::Result<Vec<u8>> {
    use exif::experimental::Writer;
    use exif::{Field, In, Rational, Tag, Value};

    let picture = image::RgbImage::from_fn(320, 240, |x, y| {
        if y < 16 {
            let bit = (n >> (x / 10)) & 1;
            return if bit == 1 { image::Rgb([20, 20, 20]) } else { image::Rgb([235, 235, 235]) };
        }
        image::Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, (n.wrapping_mul(37) % 256) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&picture)?;
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(sync_core::campaigns::BUREAU_UTC_OFFSET_HOURS));
    let local =
        jiff::Timestamp::from_millisecond(taken_at_ms)?.to_zoned(zone).strftime("%Y:%m:%d %H:%M:%S").to_string();
    let ascii =
        |tag: Tag, text: &str| Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) };
    // Degrees, minutes and hundredths of seconds.
    let degrees = |tag: Tag, value: f64| {
        let value = value.abs();
        let whole = value.trunc() as u32;
        let minutes = ((value - f64::from(whole)) * 60.0).trunc() as u32;
        let hundredths = (((value - f64::from(whole)) * 60.0 - f64::from(minutes)) * 6000.0).round() as u32;
        let parts = vec![
            Rational { num: whole, denom: 1 },
            Rational { num: minutes, denom: 1 },
            Rational { num: hundredths, denom: 100 },
        ];
        Field { tag, ifd_num: In::PRIMARY, value: Value::Rational(parts) }
    };
    let fields = [
        ascii(Tag::Make, "fieldsync"),
        ascii(Tag::Model, "demo phone"),
        ascii(Tag::DateTime, &local),
        ascii(Tag::DateTimeOriginal, &local),
        ascii(Tag::OffsetTimeOriginal, "+08:00"),
        ascii(Tag::GPSLatitudeRef, if latitude >= 0.0 { "N" } else { "S" }),
        degrees(Tag::GPSLatitude, latitude),
        ascii(Tag::GPSLongitudeRef, if longitude >= 0.0 { "E" } else { "W" }),
        degrees(Tag::GPSLongitude, longitude),
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).map_err(|e| anyhow!("writing the photo's EXIF: {e}"))?;
    let tiff = tiff.into_inner();
    // An APP1 segment right after the start-of-image marker, where cameras put it.
    let length = u16::try_from(2 + 6 + tiff.len()).context("the EXIF block is too large")?;
    let mut bytes = jpeg[..2].to_vec();
    bytes.extend_from_slice(&[0xFF, 0xE1]);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(b"Exif\0\0");
    bytes.extend_from_slice(&tiff);
    bytes.extend_from_slice(&jpeg[2..]);
    Ok(bytes)
}
