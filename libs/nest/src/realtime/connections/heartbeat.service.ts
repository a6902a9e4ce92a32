import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { Hub } from '../../core/hub';

/**
 * Every `WS_HEARTBEAT_MS`, pings every socket and terminates those that did not answer the
 * previous ping (a half-open TCP link, a frozen client). The pong handler lives on the socket.
 */
@Injectable()
export class Heartbeat implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Heartbeat.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly hub: Hub,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => this.beat(), this.config.ws.heartbeatMs);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One round: terminate the silent, ping the rest. */
  beat(): void {
    for (const connection of this.hub.all()) {
      if (connection.awaitingPong) {
        this.logger.debug({ msg: 'heartbeat missed', connectionId: connection.id });
        connection.socket.terminate();
        continue;
      }
      if (connection.socket.ping !== undefined) {
        connection.awaitingPong = true;
        connection.socket.ping();
      } else {
        connection.socket.keepAlive?.();
      }
    }
  }
}
