// A stable colour per service: hashed into a palette chosen to stay readable on a light background.
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948',
  '#9c755f', '#ff9da7', '#17becf', '#bcbd22', '#8c6bb1', '#6b8e23',
];

export function serviceColor(service: string): string {
  let h = 2166136261;
  for (let i = 0; i < service.length; i++) h = Math.imul(h ^ service.charCodeAt(i), 16777619);
  return PALETTE[(h >>> 0) % PALETTE.length];
}
