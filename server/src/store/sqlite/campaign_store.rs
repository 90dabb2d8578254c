//! [`Campaigns`] for SQLite, over the SQL of campaigns, their draws and results in `campaigns.rs`.

use super::*;

impl Campaigns for SqliteStore {
    fn create_campaign(&self, campaign: &StoredCampaign) -> StoreResult<()> {
        let campaign = campaign.clone();
        self.write(move |tx| campaigns::create_campaign(tx, &campaign))
    }
    fn campaign(&self, campaign_id: &str) -> StoreResult<Option<StoredCampaign>> {
        self.read(|conn| campaigns::campaign(conn, campaign_id))
    }
    fn campaigns(&self) -> StoreResult<Vec<StoredCampaign>> {
        self.read(campaigns::campaigns)
    }
    fn campaigns_after(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredCampaign>> {
        self.read(|conn| campaigns::campaigns_after(conn, after, limit))
    }
    fn store_draw(&self, campaign_id: &str, draw: &StoredDraw, tasks: &[Task]) -> StoreResult<bool> {
        let (campaign_id, draw, tasks) = (campaign_id.to_string(), draw.clone(), tasks.to_vec());
        self.write(move |tx| campaigns::store_draw(tx, &campaign_id, &draw, &tasks))
    }
    fn campaign_tasks(&self, campaign_id: &str) -> StoreResult<Vec<CampaignTask>> {
        self.read(|conn| campaigns::campaign_tasks(conn, Some(campaign_id), None))
    }
    fn campaign_task(&self, task_id: &str) -> StoreResult<Option<CampaignTask>> {
        self.read(|conn| Ok(campaigns::campaign_tasks(conn, None, Some(task_id))?.pop()))
    }
    fn publish_result(&self, task_id: &str, record_id: &str, by: &str, now_ms: i64) -> StoreResult<bool> {
        let (task_id, record_id, by) = (task_id.to_string(), record_id.to_string(), by.to_string());
        self.write(move |tx| campaigns::publish_result(tx, &task_id, &record_id, &by, now_ms))
    }
}
