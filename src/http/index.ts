export { tenancyPlugin, principalOf, tenantOf, requireRole, type TenancyPluginOptions } from './tenancy-plugin.js';
export { registerProblemHandlers, problemOf, sendProblem, toProblem, PROBLEM_CONTENT_TYPE, type Problem } from './problem.js';
export { installValidators } from './validation.js';
export { serverOptions, type ServerOptionsInput } from './server-options.js';
export { Drain, type DrainResult } from './drain.js';
export { installClientLimits, type ClientLimits, type ClientLimitsOptions } from './client-limits.js';
export { observabilityPlugin, type ObservabilityPluginOptions } from '../observability/plugin.js';
export { requestLogOptions, requestIdOf, TenantLogController, REQUEST_ID_PATTERN } from '../observability/request-log.js';
