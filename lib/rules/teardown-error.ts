import { CloseError, RulesError } from '../errors.js';

/**
 * One RulesError naming every failure of a teardown. Teardown goes on after a failure (removing the
 * rest is worth more than stopping early) and reports everything at the end.
 */
export function teardownError(failures: readonly unknown[]): RulesError {
  const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
  return new RulesError(`could not remove everything: ${messages.join('; ')}`, {
    cause: failures.length === 1 ? failures[0] : new CloseError('packet rules', failures),
  });
}
