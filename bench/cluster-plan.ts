// The discovery benchmark's cluster, drawn from a seed: Namespaces, Services (10% gRPC), their pods' endpoints in slices, this node's pods.

import { seededRandom } from '../test/support/seeded-random.ts';
import { type EndpointPlan, MAX_ENDPOINTS_PER_SLICE, type PortPlan, type ServicePlan, type SlicePlan } from './cluster-objects.ts';

export interface ClusterShape {
  seed: number;
  services: number;
  /** Endpoints over all Services, exactly. */
  endpoints: number;
  /** One Service in this many is gRPC, in every size tier. */
  grpcEvery: number;
  /** Namespaces holding the Services (the four system ones come on top). */
  namespaces: number;
  nodes: number;
  /** The agent's node (node index 0). */
  nodeName: string;
  /** Initial slices' trigger times lie up to a week before this (epoch ms). */
  nowMs: number;
}

export interface LocalPod {
  service: ServicePlan;
  endpoint: EndpointPlan;
  inject: boolean;
}

export interface ClusterPlan {
  shape: ClusterShape;
  namespaces: Array<{ name: string; inject: boolean }>;
  services: ServicePlan[];
  slices: SlicePlan[];
  /** The Pods behind the endpoints that run on the agent's node (the only Pods the agent watches). */
  localPods: LocalPod[];
  hostIP: string;
  random: () => number;
  /** Pod names, uids and slice names of changes made later come from the same generators. */
  names: NameMaker;
  /** Nodes, for endpoints added later: name, zone. */
  nodeAt(index: number): { name: string; zone: string };
}

/**
 * Sizes in Services of one size tier: most Services run a handful of replicas, a few hundred run tens, a few run
 * hundreds (split over several slices). Tier shares are multiples of 1/1000 so each tier holds a whole tenth of gRPC.
 */
const TIERS = [
  { share: 0.002, min: 150, max: 800 },
  { share: 0.018, min: 30, max: 120 },
  { share: 0.98, min: 1, max: 15 },
] as const;
const SMALL = TIERS.length - 1;
/** Pods per node, the kubelet's default --max-pods. */
const PODS_PER_NODE = 110;
const SYSTEM_NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const WORDS = ['api', 'auth', 'billing', 'cart', 'catalog', 'checkout', 'feed', 'geo', 'inventory', 'ledger', 'mail', 'orders', 'payments', 'profile', 'quotes', 'ranking', 'search', 'session', 'shipping', 'users'];
/** The alphabet of generated names in Kubernetes (no vowels, no look-alikes). */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const DAY_MS = 86_400_000;

export class NameMaker {
  private readonly random: () => number;

  constructor(random: () => number) {
    this.random = random;
  }

  suffix(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += NAME_ALPHABET[Math.floor(this.random() * NAME_ALPHABET.length)];
    return out;
  }

  uid(): string {
    const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(this.random() * 16).toString(16)).join('');
    return `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(this.random() * 4)]}${hex(3)}-${hex(12)}`;
  }
}

export function planCluster(shape: ClusterShape): ClusterPlan {
  const random = seededRandom(shape.seed);
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
  const names = new NameMaker(random);
  const nodeAt = (index: number): { name: string; zone: string } => ({
    name: index === 0 ? shape.nodeName : `node-${String(index).padStart(4, '0')}`,
    zone: ZONES[index % ZONES.length],
  });

  const teams = Array.from({ length: shape.namespaces }, (_, i) => ({ name: `team-${String(i).padStart(2, '0')}`, inject: i % 10 === 3 }));
  const namespaces = [...SYSTEM_NAMESPACES.map((name) => ({ name, inject: false })), ...teams];
  const order = shuffled(shape.services, random);
  const tierOf = new Array<number>(shape.services);
  const grpc = new Array<boolean>(shape.services);
  let at = 0;
  TIERS.forEach((tier, t) => {
    const count = t === SMALL ? shape.services - at : Math.round(tier.share * shape.services);
    for (let j = 0; j < count; j++, at++) {
      tierOf[order[at]] = t;
      grpc[order[at]] = j % shape.grpcEvery === 0;
    }
  });
  const sizes = tierOf.map((t) => int(TIERS[t].min, TIERS[t].max));
  fitTotal(sizes, tierOf, shape.endpoints, random);

  const services: ServicePlan[] = [];
  for (let i = 0; i < shape.services; i++) {
    const name = `${WORDS[int(0, WORDS.length - 1)]}-${String(i).padStart(4, '0')}`;
    const main: PortPlan = grpc[i] ? { name: 'grpc', port: 50051, targetPort: 50051 } : { name: 'http', port: 80, targetPort: 8080 };
    const ports = random() < 0.3 ? [main, { name: 'metrics' as const, port: 9090, targetPort: 9090 }] : [main];
    services.push({
      namespace: teams[int(0, teams.length - 1)].name,
      name,
      grpc: grpc[i],
      clusterIP: `10.96.${(i + 10) >> 8}.${(i + 10) & 255}`,
      ports,
      templateHash: names.suffix(10),
      replicaSetUid: names.uid(),
      uid: '',
    });
  }

  const podsOnNode = new Array<number>(shape.nodes).fill(0);
  const place = (): number => {
    let node = int(0, shape.nodes - 1);
    while (podsOnNode[node] >= PODS_PER_NODE) node = (node + 1) % shape.nodes;
    podsOnNode[node]++;
    return node;
  };
  const slices: SlicePlan[] = [];
  const localPods: LocalPod[] = [];
  services.forEach((service, i) => {
    const endpoints: EndpointPlan[] = [];
    for (let e = 0; e < sizes[i]; e++) {
      const node = place();
      const state = random();
      const endpoint: EndpointPlan = {
        // Each node's pod CIDR is a /24: 10.64.0.0/24 for node 0, and so on.
        ip: `10.${64 + (node >> 8)}.${node & 255}.${1 + podsOnNode[node]}`,
        pod: `${service.name}-${service.templateHash}-${names.suffix(5)}`,
        uid: names.uid(),
        node: nodeAt(node).name,
        zone: nodeAt(node).zone,
        // 1% failing readiness, 0.5% terminating (still serving while they drain), the rest ready.
        ready: state >= 0.015,
        serving: state >= 0.01,
        terminating: state >= 0.01 && state < 0.015,
      };
      endpoints.push(endpoint);
      if (node === 0) localPods.push({ service, endpoint, inject: random() < 0.2 });
    }
    const triggerTime = new Date(shape.nowMs - Math.floor(random() * 7 * DAY_MS)).toISOString();
    for (let from = 0; from < endpoints.length; from += MAX_ENDPOINTS_PER_SLICE) {
      slices.push({ service, name: `${service.name}-${names.suffix(5)}`, endpoints: endpoints.slice(from, from + MAX_ENDPOINTS_PER_SLICE), triggerTime });
    }
  });
  return { shape, namespaces, services, slices, localPods, hostIP: '172.20.0.10', random, names, nodeAt };
}

function shuffled(length: number, random: () => number): number[] {
  const out = Array.from({ length }, (_, i) => i);
  for (let i = length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Moves the sum of `sizes` to exactly `total` one endpoint at a time, on random small Services within their range. */
function fitTotal(sizes: number[], tierOf: number[], total: number, random: () => number): void {
  const small = sizes.map((_, i) => i).filter((i) => tierOf[i] === SMALL);
  let diff = total - sizes.reduce((a, b) => a + b, 0);
  const room = small.length * (TIERS[SMALL].max - TIERS[SMALL].min);
  if (Math.abs(diff) > room) throw new Error(`cannot fit ${total} endpoints into ${sizes.length} Services`);
  while (diff !== 0) {
    const i = small[Math.floor(random() * small.length)];
    const step = Math.sign(diff);
    const next = sizes[i] + step;
    if (next < TIERS[SMALL].min || next > TIERS[SMALL].max) continue;
    sizes[i] = next;
    diff -= step;
  }
}

export interface ClusterStats {
  namespaces: number;
  services: number;
  grpcServices: number;
  endpoints: number;
  grpcEndpoints: number;
  slices: number;
  grpcSlices: number;
  servicesWithSeveralSlices: number;
  grpcServicesWithSeveralSlices: number;
  /** Endpoints per Service: min, median, p90, p99, max. */
  sizes: { min: number; p50: number; p90: number; p99: number; max: number };
  notReadyEndpoints: number;
  terminatingEndpoints: number;
  localPods: number;
  localPodsOptedIn: number;
}

export function clusterStats(plan: ClusterPlan): ClusterStats {
  const sizeOf = new Map<ServicePlan, number>();
  const slicesOf = new Map<ServicePlan, number>();
  let notReady = 0;
  let terminating = 0;
  for (const slice of plan.slices) {
    sizeOf.set(slice.service, (sizeOf.get(slice.service) ?? 0) + slice.endpoints.length);
    slicesOf.set(slice.service, (slicesOf.get(slice.service) ?? 0) + 1);
    for (const e of slice.endpoints) {
      if (e.terminating) terminating++;
      else if (!e.ready) notReady++;
    }
  }
  const sizes = plan.services.map((s) => sizeOf.get(s) ?? 0).sort((a, b) => a - b);
  const at = (q: number): number => sizes[Math.min(sizes.length - 1, Math.floor(q * sizes.length))];
  const grpc = plan.services.filter((s) => s.grpc);
  const namespaceInjects = new Set(plan.namespaces.filter((n) => n.inject).map((n) => n.name));
  return {
    namespaces: plan.namespaces.length,
    services: plan.services.length,
    grpcServices: grpc.length,
    endpoints: sizes.reduce((a, b) => a + b, 0),
    grpcEndpoints: grpc.reduce((a, s) => a + (sizeOf.get(s) ?? 0), 0),
    slices: plan.slices.length,
    grpcSlices: plan.slices.filter((s) => s.service.grpc).length,
    servicesWithSeveralSlices: plan.services.filter((s) => (slicesOf.get(s) ?? 0) > 1).length,
    grpcServicesWithSeveralSlices: grpc.filter((s) => (slicesOf.get(s) ?? 0) > 1).length,
    sizes: { min: sizes[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sizes[sizes.length - 1] },
    notReadyEndpoints: notReady,
    terminatingEndpoints: terminating,
    localPods: plan.localPods.length,
    localPodsOptedIn: plan.localPods.filter((p) => p.inject || namespaceInjects.has(p.service.namespace)).length,
  };
}
