export { feeFor } from './fees.js';
export {
  type ClientSupport,
  type EligibleProvider,
  type Exclusion,
  type RouteAction,
  type RouteDecision,
  type RoutingInput,
  type RoutingPolicy,
  routeCharge,
} from './route.js';
