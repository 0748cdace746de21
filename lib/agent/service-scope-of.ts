import type { Config } from '../config/config.js';
import { InvalidConfigError } from '../errors.js';
import { parseLabelSelector } from '../model/label-selector.js';
import type { ServiceScope } from '../source/scoped-service-source.js';

/** The Services --namespace and --selector ask for; undefined when neither is given (all of them). */
export function serviceScopeOf(config: Pick<Config, 'namespaces' | 'selector'>): ServiceScope | undefined {
  if (config.namespaces.length === 0 && config.selector === '') return undefined;
  let selector;
  if (config.selector !== '') {
    const parsed = parseLabelSelector(config.selector);
    // buildConfig has validated it: this is a Config made some other way.
    if (typeof parsed === 'string') throw new InvalidConfigError([`--selector: ${parsed}`]);
    selector = parsed;
  }
  return { namespaces: [...config.namespaces], selector };
}
