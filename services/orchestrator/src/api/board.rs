//! `iea.v1.Board`: the deadline board and its alerts.

use std::sync::Arc;

use iea_proto::error::ApiError;
use iea_proto::v1::board_server::Board as BoardService;
use iea_proto::v1::{BoardAlert, BoardReport, BoardRow, GetBoardRequest};
use tonic::{Request, Response, Status};

use super::{internal, principal, timestamp};
use crate::Core;
use crate::board::{Alert, BoardError, Report, Row};

pub struct BoardApi(pub Arc<Core>);

pub(crate) fn board_error(e: BoardError) -> ApiError {
    match e {
        BoardError::InvalidInput(m) => ApiError::invalid_input(m),
        BoardError::Internal(e) => internal(e),
    }
}

pub(crate) fn alert_message(a: &Alert) -> BoardAlert {
    BoardAlert {
        code: a.code.code().to_owned(),
        message: a.message.clone(),
        urgency: a.code.urgency(),
        siret: a.siret.clone(),
        month: a.month.to_string(),
        deposit_id: a.deposit_id.unwrap_or(0),
        due: Some(timestamp(a.due)),
    }
}

fn row_message(r: &Row) -> BoardRow {
    let d = r.deposit.as_ref();
    BoardRow {
        siret: r.siret.clone(),
        month: r.month.to_string(),
        due: Some(timestamp(r.due)),
        days_left: r.days_left,
        days_late: r.days_late,
        overdue: r.overdue,
        due_words: r.due_words(),
        deposit_id: d.map(|d| d.id).unwrap_or(0),
        deposit_state: d.map(|d| d.state.code().to_owned()).unwrap_or_default(),
        deposited_at: d.and_then(|d| d.registered_at).map(timestamp),
        idflux: d.and_then(|d| d.idflux.clone()).unwrap_or_default(),
        conformity: r
            .conformity
            .map(|c| c.code().to_owned())
            .unwrap_or_default(),
        anomalies: u32::try_from(r.anomalies).unwrap_or(u32::MAX),
        crm_received: r.crm.is_some(),
        crm_received_at: r.crm.as_ref().map(|c| timestamp(c.received_at)),
        rates: r.crm.as_ref().map(|c| c.rates).unwrap_or(0),
        crm_identifier: r
            .crm
            .as_ref()
            .map(|c| c.identifier.clone())
            .unwrap_or_default(),
    }
}

fn report_message(r: &Report) -> BoardReport {
    BoardReport {
        rows: r.rows.iter().map(row_message).collect(),
        alerts: r.alerts.iter().map(alert_message).collect(),
        computed_at: Some(timestamp(r.computed_at)),
    }
}

#[tonic::async_trait]
impl BoardService for BoardApi {
    #[tracing::instrument(skip_all)]
    async fn get_board(
        &self,
        request: Request<GetBoardRequest>,
    ) -> Result<Response<BoardReport>, Status> {
        let caller = principal(&self.0, &request).await?;
        let siret = request.get_ref().siret.clone();
        let r = self
            .0
            .board
            .report(&caller, Some(siret.as_str()))
            .await
            .map_err(board_error)?;
        Ok(Response::new(report_message(&r)))
    }
}
