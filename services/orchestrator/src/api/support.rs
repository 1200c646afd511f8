//! `iea.v1.Support`.

use std::sync::Arc;

use iea_proto::v1::support_server::Support;
use iea_proto::v1::{PrepareSupportRequestRequest, SupportRequest};
use tonic::{Request, Response, Status};

use super::credentials::credentials_error;
use super::{internal, principal};
use crate::Core;
use crate::support;

pub struct SupportApi(pub Arc<Core>);

#[tonic::async_trait]
impl Support for SupportApi {
    #[tracing::instrument(skip_all)]
    async fn prepare_support_request(
        &self,
        request: Request<PrepareSupportRequestRequest>,
    ) -> Result<Response<SupportRequest>, Status> {
        let caller = principal(&self.0, &request).await?;
        let req = request.into_inner();
        let facts = support::facts(&self.0, &caller)
            .await
            .map_err(credentials_error)?;
        let eml = support::message(&facts, &req.description, &req.from).map_err(internal)?;
        Ok(Response::new(SupportRequest {
            to: support::SUPPORT_ADDRESS.to_owned(),
            subject: support::subject(self.0.software_version.get()),
            eml,
        }))
    }
}
