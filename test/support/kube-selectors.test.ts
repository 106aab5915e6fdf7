// Label and field selectors of the test API server: the query syntax, matching, and the errors the real server gives.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RESOURCES } from './kube-api-resources.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './kube-selectors.ts';

function selects(selector: string, labels: Record<string, string> | undefined): boolean {
  return matchesLabels(parseLabelSelector(selector), labels);
}

describe('label selectors', () => {
  it('parses every operator into requirements', () => {
    assert.deepEqual(parseLabelSelector('a=b, c==d,e!=f,g in (x, y),h notin (z),i,!j,k>3,l<4'), [
      { key: 'a', operator: '=', values: ['b'] },
      { key: 'c', operator: '==', values: ['d'] },
      { key: 'e', operator: '!=', values: ['f'] },
      { key: 'g', operator: 'in', values: ['x', 'y'] },
      { key: 'h', operator: 'notin', values: ['z'] },
      { key: 'i', operator: 'exists', values: [] },
      { key: 'j', operator: '!', values: [] },
      { key: 'k', operator: '>', values: ['3'] },
      { key: 'l', operator: '<', values: ['4'] },
    ]);
    assert.deepEqual(parseLabelSelector(''), []);
    assert.deepEqual(parseLabelSelector('app.kubernetes.io/name='), [{ key: 'app.kubernetes.io/name', operator: '=', values: [''] }]);
  });

  it('matches as the API server does (absent labels pass != and notin)', () => {
    const labels = { app: 'web', tier: 'front', replicas: '3' };
    assert.equal(selects('app=web', labels), true);
    assert.equal(selects('app==db', labels), false);
    assert.equal(selects('app!=db', labels), true);
    assert.equal(selects('missing!=x', labels), true);
    assert.equal(selects('app in (db,web)', labels), true);
    assert.equal(selects('app notin (web)', labels), false);
    assert.equal(selects('missing notin (web)', labels), true);
    assert.equal(selects('tier', labels), true);
    assert.equal(selects('!tier', labels), false);
    assert.equal(selects('!missing', undefined), true);
    assert.equal(selects('replicas>2,replicas<4', labels), true);
    assert.equal(selects('replicas>3', labels), false);
    assert.equal(selects('app=web,tier=back', labels), false, 'comma is AND');
    assert.equal(selects('app=web', undefined), false);
  });

  it('rejects malformed selectors with a SelectorError', () => {
    for (const bad of ['a=b,', 'a in ()', 'a in (x', 'a b', '=b', 'a>x', '-a=b', 'a=b c', '!', 'a=-b']) {
      assert.throws(() => parseLabelSelector(bad), SelectorError, bad);
    }
  });
});

describe('field selectors', () => {
  const pod = { metadata: { name: 'web-1', namespace: 'shop' }, spec: { nodeName: 'node-a' }, status: { phase: 'Running' } };
  const podFields = RESOURCES.pods.fields;

  it('matches =, == and != on the fields a pod supports', () => {
    const matches = (selector: string) => matchesFields(parseFieldSelector(selector, podFields), pod);
    assert.equal(matches('spec.nodeName=node-a'), true);
    assert.equal(matches('spec.nodeName==node-b'), false);
    assert.equal(matches('metadata.namespace!=shop'), false);
    assert.equal(matches('metadata.name=web-1,status.phase=Running'), true);
    assert.equal(matches('spec.hostNetwork=false'), true, 'an absent boolean field reads "false"');
    assert.equal(matches('status.podIP='), true, 'an absent field reads ""');
    assert.equal(matches(''), true);
  });

  it('unescapes \\, and \\= in values', () => {
    const [requirement] = parseFieldSelector('metadata.name=a\\,b\\=c', podFields);
    assert.equal(requirement?.value, 'a,b=c');
  });

  it('rejects a field the resource does not support, with the real message', () => {
    assert.throws(() => parseFieldSelector('spec.nodeName=x', RESOURCES.services.fields), { name: 'SelectorError', message: 'field label not supported: spec.nodeName' });
    assert.throws(() => parseFieldSelector('metadata.namespace=x', RESOURCES.namespaces.fields), { message: 'field label not supported: metadata.namespace' });
    assert.throws(() => parseFieldSelector('metadata.name', podFields), /can't understand 'metadata.name'/);
  });
});
