import { Module } from '@nestjs/common';
import { SwitchboardModule, switchboardOptionsFromEnv } from '@switchboard/nest';
import { InvoicesModule } from './invoices/invoices.module';

@Module({
  imports: [
    // The settings of docs/configuration.md, here from the environment (JWT_SECRET,
    // ALLOWED_ORIGINS, REDIS_URL, BROADCAST_API_KEY...); any object of camelCase options works.
    SwitchboardModule.forRoot(switchboardOptionsFromEnv(process.env)),
    InvoicesModule,
  ],
})
export class AppModule {}
