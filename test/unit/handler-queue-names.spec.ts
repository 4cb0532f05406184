import { policyDelays, removedHandlerQueues } from '../../lib/topology/handler-definition';

describe('the queues a handler leaves behind', () => {
  it.each([
    [{ attempts: 3, delaysMs: [1000, 5000] }, [1000, 5000]],
    [{ attempts: 2, delaysMs: [1000, 5000] }, [1000]], // one retry: only the first delay has a queue
    [{ attempts: 5, delaysMs: [0, 200, 200] }, [200]], // 0 needs no queue; a repeated delay is one queue
    [{ attempts: 1, delaysMs: [1000] }, []],
    [false, []],
  ] as const)('policy %j has retry queues for %j', (policy, delays) => {
    expect(policyDelays(policy === false ? false : { attempts: policy.attempts, delaysMs: [...policy.delaysMs] })).toEqual(delays);
  });

  it.each([
    [
      [1000, 5000],
      ['q.retry.1000ms', 'q.retry.5000ms', 'q', 'q.dlq'],
    ],
    [
      [0, 300, 300],
      ['q.retry.300ms', 'q', 'q.dlq'],
    ],
    [[], ['q', 'q.dlq']],
  ])('delays %j: %j, retry queues first (they empty into the queue)', (delays, names) => {
    expect(removedHandlerQueues('q', delays)).toEqual(names);
  });
});
