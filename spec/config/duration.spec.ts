import test from 'ava';
import { formatDuration, parseDuration } from '../../lib/config/duration.js';

test('parses Go-style durations', (t) => {
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('30s'), 30_000);
  t.is(parseDuration('1m30s'), 90_000);
  t.is(parseDuration('1h'), 3_600_000);
  t.is(parseDuration('1.5s'), 1500);
  t.is(parseDuration('0'), 0);
});

test('rejects bare numbers and junk', (t) => {
  for (const bad of ['30', 's', '1x', '', '1s junk', '-1s']) t.is(parseDuration(bad), undefined, bad);
});

test('formats durations', (t) => {
  t.is(formatDuration(30_000), '30s');
  t.is(formatDuration(250), '250ms');
  t.is(formatDuration(60_000), '1m');
});
