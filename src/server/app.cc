#include "server/app.h"

#include "server/routes/routes.h"

namespace xnai::server {

const char* Version() { return "0.1.0"; }

void BuildRouter(Router& router, AppContext& app) {
  routes::AddHealthRoutes(router, app);
  routes::AddCollectionRoutes(router, app);
  routes::AddDocumentRoutes(router, app);
  routes::AddSearchRoutes(router, app);
  routes::AddOpenAiRoutes(router, app);
  routes::AddWebRoutes(router, app);
}

}  // namespace xnai::server
