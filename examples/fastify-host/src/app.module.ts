import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SwitchboardModule } from '@switchboard/nest';
import { HealthController } from './health.controller';
import { InvoicesModule } from './invoices/invoices.module';
import { Settings, SettingsModule } from './settings';

@Module({
  imports: [
    SwitchboardModule.forRootAsync({
      imports: [SettingsModule],
      inject: [Settings],
      useFactory: (settings: Settings) => settings.switchboard(),
      // This application serves its own probe (below) and leaves /metrics to Switchboard.
      routes: { health: false },
    }),
    TerminusModule,
    InvoicesModule,
  ],
  controllers: [HealthController],
})
export class AppModule {}
