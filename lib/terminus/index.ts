export { MessagingHealthIndicator } from './messaging-health-indicator';
