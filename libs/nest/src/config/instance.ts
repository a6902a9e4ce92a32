import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';

/** This process's identity in the cluster: connection entries, leases and bus messages carry it. */
@Injectable()
export class Instance {
  readonly id = randomUUID();
}
