/**
 * Balancing methods by name. Each method lives in its own file under
 * policies/; this table is the only place that knows them all.
 */
import type { BalanceConfig } from '../config/schema.js';
import type { PolicyFactory } from './policy.js';
import { roundRobin } from './policies/round-robin.js';

/**
 * Returns the policy factory for a balance config, or an error message when
 * the method cannot be built (for instance a hash key with unknown variables).
 */
export function policyFactoryFor(balance: BalanceConfig, upstreamName: string): PolicyFactory | string {
  switch (balance.method) {
    case 'round_robin':
      return roundRobin;
    default:
      return `balancing method "${balance.method}" of upstream "${upstreamName}" is not available yet`;
  }
}
