import { createRequire } from 'node:module';
import type * as JsYaml from 'js-yaml';

// YAML 1.2 core schema scalars, resolved as `yaml` resolves them. js-yaml's own core schema
// differs at the edges (it reads `-0x1F` and `0b101` as numbers, `-.5` as a string), and the
// same manifest must not mean two things depending on which reader took it. Both quick readers
// use these functions: js-yaml through the schema of jsYaml(), the plain reader through resolvePlainScalar.
//
// js-yaml asks every implicit type about every plain scalar (names, addresses, protocols), so the
// checks come before the patterns: null and bool are whole-string comparisons equal to their
// patterns, and a number starts with a digit, a sign or a dot (reading 10 files of 1,000 Services
// and their slices: 508 → 473 ms of CPU, js-yaml's own work being about 370 of it).
const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

function mayBeNumber(s: string): boolean {
  const c = s.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
}
// ^(?:~|[Nn]ull|NULL)?$
const isNull = (s: string): boolean => s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL';
// ^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$
const isBool = (s: string): boolean => s === 'true' || s === 'True' || s === 'TRUE' || s === 'false' || s === 'False' || s === 'FALSE';
const toBool = (s: string): boolean => s[0] === 't' || s[0] === 'T';
const isInt = (s: string): boolean => mayBeNumber(s) && INT.test(s);
const toInt = (s: string): number => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : parseInt(s, 10));
const isFloat = (s: string): boolean => mayBeNumber(s) && FLOAT.test(s);
function toFloat(s: string): number {
  const tail = s.slice(-3).toLowerCase();
  if (tail === 'nan') return NaN;
  if (tail === 'inf') return s.startsWith('-') ? -Infinity : Infinity;
  return parseFloat(s);
}

/**
 * js-yaml, loaded on first use: the plain reader reads the manifests generators write without it,
 * and loading it cost about 30 ms of CPU, in the parse thread's start and the main thread's.
 */
let jsYamlModule: { readonly load: typeof JsYaml.load; readonly schema: JsYaml.Schema } | undefined;

/** js-yaml's `load`, and its failsafe schema with the core schema's implicit scalars, in js-yaml's order of asking. */
export function jsYaml(): { readonly load: typeof JsYaml.load; readonly schema: JsYaml.Schema } {
  if (jsYamlModule) return jsYamlModule;
  const { FAILSAFE_SCHEMA, Type, load } = createRequire(import.meta.url)('js-yaml') as typeof JsYaml;
  const schema = FAILSAFE_SCHEMA.extend({
    implicit: [
      new Type('tag:yaml.org,2002:null', { kind: 'scalar', resolve: isNull, construct: () => null }),
      new Type('tag:yaml.org,2002:bool', { kind: 'scalar', resolve: isBool, construct: toBool }),
      new Type('tag:yaml.org,2002:int', { kind: 'scalar', resolve: isInt, construct: toInt }),
      new Type('tag:yaml.org,2002:float', { kind: 'scalar', resolve: isFloat, construct: toFloat }),
    ],
  });
  return (jsYamlModule = { load, schema });
}

/** What a plain (unquoted) scalar means to js-yaml with that schema: null, a boolean, a number or the string itself. */
export function resolvePlainScalar(s: string): unknown {
  if (mayBeNumber(s)) {
    // The common numbers and addresses without a pattern: digits alone are an int (as toInt reads
    // them), and two dots are neither an int nor a float.
    const digits = decimalDigits(s);
    if (digits >= 0) return digits;
    if (s.indexOf('.') !== s.lastIndexOf('.')) return s;
    if (INT.test(s)) return toInt(s);
    if (FLOAT.test(s)) return toFloat(s);
    return s;
  }
  if (isNull(s)) return null;
  if (isBool(s)) return toBool(s);
  return s;
}

/** The value of a text of 1 to 15 decimal digits (exact as a double), else -1. */
function decimalDigits(s: string): number {
  const n = s.length;
  if (n > 15) return -1;
  let value = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}
