import test from 'ava';
import { parseLabelSelector } from '../../lib/model/label-selector.js';
import type { LabelSelector } from '../../lib/model/label-selector.js';

function parse(text: string): LabelSelector {
  const s = parseLabelSelector(text);
  if (typeof s === 'string') throw new Error(s);
  return s;
}

const labels = { app: 'orders', tier: 'web', 'example.com/team': 'shop' };

test('every operator, as kubectl -l reads them', (t) => {
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['app=orders', true],
    ['app==orders', true],
    ['app=carts', false],
    ['app!=carts', true],
    ['app!=orders', false],
    ['missing!=x', true],
    ['app in (carts, orders)', true],
    ['app in (carts)', false],
    ['missing in (x)', false],
    ['app notin (carts,orders)', false],
    ['missing notin (x)', true],
    ['tier', true],
    ['missing', false],
    ['!missing', true],
    ['!tier', false],
    ['example.com/team=shop', true],
    ['app=orders,tier=web', true],
    ['app=orders,tier=db', false],
    [' app in (orders,carts) , !legacy , tier ', true],
    ['app=', false],
    ['missing=', false],
  ];
  for (const [text, want] of cases) t.is(parse(text).matches(labels), want, text);
  t.true(parse('app=').matches({ app: '' }), 'an empty value matches an empty label');
  t.deepEqual(parse('app in (a,b),!x').requirements, [
    { key: 'app', op: 'in', values: ['a', 'b'] },
    { key: 'x', op: '!exists' },
  ]);
});

test('a bad selector is refused with the requirement at fault', (t) => {
  const bad: Array<[string, RegExp]> = [
    ['app=orders,', /empty requirement/],
    ['app in orders', /"app in orders": expected key/],
    ['app in ()', /needs at least one value/],
    ['app=a b', /expected key/],
    ['-bad=x', /invalid label key "-bad"/],
    ['UPPER.example.com/x=1', /prefix must be a DNS subdomain/],
    [`app=${'v'.repeat(64)}`, /invalid value/],
    ['app in (ok,-no)', /invalid value "-no"/],
    ['a=b=c', /expected key/],
    ['app>1', /invalid label key "app>1"/],
  ];
  for (const [text, message] of bad) {
    const r = parseLabelSelector(text);
    t.is(typeof r, 'string', text);
    t.regex(r as string, message, text);
  }
});
