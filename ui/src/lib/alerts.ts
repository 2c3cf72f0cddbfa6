// `GET /api/v1/alerts`: the alert rules from the config file, their state and example traces.
import { getJson } from './api';

export type AlertState = 'inactive' | 'pending' | 'firing';

export interface ExampleTrace {
  traceId: string;
  spanId: string;
  durationSeconds: number;
  error: boolean;
  url: string;
}

export interface AlertRule {
  name: string;
  service: string;
  operation: string | null;
  kind: string | null;
  condition: string;
  window: string;
  for: string;
  description: string | null;
  state: AlertState;
  since: string;
  value: number | null;
  valueText: string | null;
  thresholdText: string;
  calls: number | null;
  errors: number | null;
  lastEvaluation: string | null;
  firedAt: string | null;
  resolvedAt: string | null;
  summary: string;
  exampleTraces: ExampleTrace[] | null;
}

export interface AlertWebhook {
  name: string;
  format: 'generic' | 'slack';
  sent: number;
  failed: number;
  lastError: string | null;
}

export interface AlertsOverview {
  evaluationInterval: string;
  externalUrl: string;
  rules: AlertRule[];
  webhooks: AlertWebhook[];
}

export const fetchAlerts = () => getJson<AlertsOverview>('/api/v1/alerts');
