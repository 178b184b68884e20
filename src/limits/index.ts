export { Plans, builtInPlans, scalarLimits, type Limits, type LimitOverrides, type LimitsPatch, type LimitSources, type EffectiveLimits, type PlanInput, type ScalarLimit } from './plans.js';
export { Admission, type AdmissionDecision } from './admission.js';
export { Quotas, STORAGE_QUOTA, type GuardOptions, type Queryable } from './quotas.js';
export { FairSemaphore, type Release } from './fair-semaphore.js';
export { limitsView, type LimitsView } from './limits-view.js';
